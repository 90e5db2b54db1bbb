// A resolve hook that gives ES modules what `require` gets from NODE_PATH: a bare
// specifier ('@aws-sdk/client-s3') that the importing module's own node_modules folders
// do not have is looked for in the folders of NODE_PATH, in order. Registered by
// bootstrap.js with those folders; anything the default resolution finds is left alone.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

let parents = [];

export function initialize(data) {
  // Resolving from a file beside a node_modules folder looks inside that folder (and
  // only a folder of that name).
  parents = (data && data.folders ? data.folders : [])
    .filter((folder) => path.basename(folder) === 'node_modules')
    .map((folder) => pathToFileURL(path.join(path.dirname(folder), 'triggerfish-resolve.js')).href);
}

function isBare(specifier) {
  return !/^(?:[./]|[a-z][a-z0-9+.-]*:)/i.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (!error || error.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw error;
    for (const parentURL of parents) {
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch {
        // not there either
      }
    }
    throw error;
  }
}
