'use strict';
// The Node.js execution environment: the process the executor starts per environment.
//
// Run as `node [--max-old-space-size=N] bootstrap.js FD`, where FD is its end of the
// protocol socket (see triggerfish/runtime/protocol.py: 4-byte length, then one msgpack
// array whose first item is the message's tag). It reads an optional Setup ("n": the
// working directory and variables of a pre-started process), then Init ("i"), loads
// the handler (the init phase), answers Ready ("r") or InitFailed ("f"), then serves
// Invoke ("v") one at a time with Emitted ("e") frames then one Done ("d"). An Invoke
// reached after its start-by time (on the monotonic clock all processes share) is
// answered Skipped ("x") and not run; the clock is read only once the answer to the
// invocation ahead is in the socket, an order the executor relies on.
//
// It promises what the Python environment promises: Lambda's handler contract (async
// handlers, callback handlers, CommonJS and ES modules), Lambda's context object, output
// captured per invocation and capped at the log limit, Lambda's error shape
// ({errorType, errorMessage, trace}), the memory peak per invocation, and "oom" when the
// peak went over the memory size (the environment then exits). Its log lines are
// Lambda's text format, or its JSON format when AWS_LAMBDA_LOG_FORMAT is JSON. It uses
// nothing but Node.js itself.
//
// Packages: a function's own node_modules first, then the folders of NODE_PATH (where
// the node's AWS SDK v3 bundle is), for `require` and, through a resolve hook, for
// `import`. When the function's code loads aws-sdk v2, which reads no endpoint from the
// environment, its global configuration gets AWS_ENDPOINT_URL (and the per-service
// AWS_ENDPOINT_URL_<SERVICE>) and path-style S3 addresses before the code goes on.

const fs = require('fs');
const net = require('net');
const path = require('path');
const url = require('url');
const util = require('util');
const Module = require('module');
const asyncHooks = require('async_hooks');
const { Float, encodeFrame, FrameReader } = require('./msgpack.js');

const OUTPUT_FD = 1;
const AsyncFunction = (async () => {}).constructor;
const EXIT_OUT_OF_MEMORY = 197;
const EXTENSIONS = ['.js', '.mjs', '.cjs'];

// -- output ------------------------------------------------------------------------

let logLimit = 256 * 1024;
let budget = logLimit;
let dropped = 0;
let currentRequestId = '';

function writeOutput(data) {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  if (bytes.length <= budget) {
    budget -= bytes.length;
    fs.writeSync(OUTPUT_FD, bytes);
  } else {
    if (budget > 0) fs.writeSync(OUTPUT_FD, bytes.subarray(0, budget));
    dropped += bytes.length - budget;
    budget = 0;
  }
}

function patchStream(stream) {
  stream.write = function (chunk, encoding, callback) {
    if (typeof encoding === 'function') callback = encoding;
    writeOutput(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
    if (typeof callback === 'function') process.nextTick(callback);
    return true;
  };
}

// Lambda's text format: `<ISO time>\t<request id>\t<LEVEL>\t<message>`.
function logLine(level, args) {
  writeOutput(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}\n`);
}

function patchConsole() {
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG' };
  for (const [name, level] of Object.entries(levels)) {
    console[name] = (...args) => logLine(level, args);
  }
  console.trace = (...args) => {
    const stack = new Error().stack.split('\n').slice(2).join('\n');
    logLine('TRACE', [util.format(...args) + '\n' + stack]);
  };
}

// Lambda's JSON format (AWS_LAMBDA_LOG_FORMAT=JSON): one object a console call,
// {timestamp, level, requestId, message} and, for an Error argument, errorType,
// errorMessage and stackTrace; calls under AWS_LAMBDA_LOG_LEVEL write nothing. The
// variables are read once, at Init (a pre-started process gets the function's only
// then), so the text format's calls and lines stay as they are.
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
let jsonLogs = false;
let platformRecords = true; // TRIGGERFISH_SYSTEM_LOG_LEVEL lets the INFO records through

function jsonLine(level, args, suffix) {
  const line = {
    timestamp: new Date().toISOString(),
    level,
    requestId: currentRequestId,
    message: util.format(...args) + suffix,
  };
  const error = args.find((arg) => arg instanceof Error);
  if (error !== undefined) {
    line.errorType = (error.constructor && error.constructor.name) || 'UnknownError';
    line.errorMessage = error.message;
    line.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  writeOutput(JSON.stringify(line) + '\n');
}

function configureLogs() {
  const env = process.env;
  jsonLogs = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  if (!jsonLogs) return;
  const system = (env.TRIGGERFISH_SYSTEM_LOG_LEVEL || 'INFO').toUpperCase();
  platformRecords = system !== 'WARN';
  let least = LEVELS.indexOf((env.AWS_LAMBDA_LOG_LEVEL || 'INFO').toUpperCase());
  if (least < 0) least = LEVELS.indexOf('INFO');
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE' };
  for (const [name, level] of Object.entries(levels)) {
    if (LEVELS.indexOf(level) < least) console[name] = () => {};
    else if (name === 'trace') {
      console.trace = (...args) => jsonLine(level, args, '\n' + new Error().stack.split('\n').slice(2).join('\n'));
    } else console[name] = (...args) => jsonLine(level, args, '');
  }
}

function capOutput(data, limit, alreadyDropped) {
  let gone = alreadyDropped;
  if (data.length > limit) {
    gone += data.length - limit;
    data = data.subarray(0, limit);
  }
  let text = data.toString('utf8');
  if (text && !text.endsWith('\n')) text += '\n';
  if (gone) text += `[Triggerfish: log truncated, ${gone} bytes dropped]\n`;
  return text;
}

/** The output since the last drain, capped, and the output file emptied. */
function drain() {
  const size = fs.fstatSync(OUTPUT_FD).size;
  if (size === 0 && dropped === 0) return '';
  let data = Buffer.alloc(0);
  if (size) {
    data = Buffer.allocUnsafe(Math.min(size, logLimit + 1));
    const read = fs.readSync(OUTPUT_FD, data, 0, data.length, 0);
    data = data.subarray(0, read);
  }
  fs.ftruncateSync(OUTPUT_FD, 0);
  const text = capOutput(data, logLimit, dropped + Math.max(0, size - logLimit - 1));
  budget = logLimit;
  dropped = 0;
  return text;
}

// -- memory ------------------------------------------------------------------------

let clearRefs = null;
try {
  clearRefs = fs.openSync('/proc/self/clear_refs', 'w');
} catch {
  clearRefs = null;
}

function resetPeak() {
  if (clearRefs !== null) {
    try {
      fs.writeSync(clearRefs, '5');
    } catch {
      clearRefs = null;
    }
  }
}

function peakMb() {
  try {
    const status = fs.readFileSync('/proc/self/status', 'latin1');
    const match = /VmHWM:\s+(\d+)\s+kB/.exec(status);
    if (match) return Math.ceil(Number(match[1]) / 1024);
  } catch {
    // fall through
  }
  return Math.ceil(process.resourceUsage().maxRSS / 1024);
}

// -- log lines (the same shapes as triggerfish/runtime/report.py) --------------------

function reportLine(requestId, durationMs, memoryMb, peak, initMs, status) {
  let line =
    `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms` +
    `\tBilled Duration: ${Math.max(1, Math.ceil(durationMs))} ms` +
    `\tMemory Size: ${memoryMb} MB\tMax Memory Used: ${peak} MB`;
  if (initMs !== null) line += `\tInit Duration: ${initMs.toFixed(2)} ms`;
  if (status) line += `\tStatus: ${status}`;
  return line + '\n';
}

// The JSON format's records, field for field those of PlatformLog in report.py.
function platformRecord(type, record) {
  if (!platformRecords) return '';
  return JSON.stringify({ time: new Date().toISOString(), type, record }) + '\n';
}

function errorRecord(requestId, doc) {
  return JSON.stringify({
    timestamp: new Date().toISOString(),
    level: 'ERROR',
    message: `${doc.errorType}: ${doc.errorMessage}`,
    errorType: doc.errorType,
    errorMessage: doc.errorMessage,
    stackTrace: doc.trace,
    requestId,
  }) + '\n';
}

function jsonInvocationLogs(requestId, output, failure, status, durationMs, memoryMb, peak, initMs) {
  const round = (ms) => Math.round(ms * 1000) / 1000;
  const metrics = {
    durationMs: round(durationMs),
    billedDurationMs: Math.max(1, Math.ceil(durationMs)),
    memorySizeMB: memoryMb,
    maxMemoryUsedMB: peak,
  };
  if (initMs !== null) metrics.initDurationMs = round(initMs);
  return (
    platformRecord('platform.start', { requestId, version: init.functionVersion }) +
    output +
    (failure === null ? '' : errorRecord(requestId, failure)) +
    platformRecord('platform.runtimeDone', { requestId, status: status === 'ok' ? 'success' : 'error' }) +
    platformRecord('platform.report', { requestId, metrics, status: status === 'ok' ? 'success' : status })
  );
}

// -- errors ------------------------------------------------------------------------

/** Lambda's error document for any thrown value. */
function errorDocument(error) {
  if (error instanceof Error || (error && typeof error === 'object' && 'message' in error)) {
    const stack = typeof error.stack === 'string' ? error.stack.split('\n') : [];
    return {
      errorType: String(error.name || (error.constructor && error.constructor.name) || 'Error'),
      errorMessage: String(error.message ?? ''),
      trace: stack,
    };
  }
  if (typeof error === 'string') return { errorType: 'string', errorMessage: error, trace: [] };
  let message;
  try {
    message = JSON.stringify(error) ?? String(error);
  } catch {
    message = String(error);
  }
  return { errorType: typeof error, errorMessage: message, trace: [] };
}

function logError(prefix, doc) {
  if (jsonLogs) {
    writeOutput(errorRecord(currentRequestId, doc));
    return;
  }
  const shown = { errorType: doc.errorType, errorMessage: doc.errorMessage, stack: doc.trace };
  logLine('ERROR', [`${prefix} \t${JSON.stringify(shown)}`]);
}

// -- packages beyond the function's own -----------------------------------------------

/** The folders of NODE_PATH, in order. */
function nodePaths() {
  return (process.env.NODE_PATH || '').split(path.delimiter).filter((entry) => path.isAbsolute(entry));
}

/** What to add to "Cannot find module '@aws-sdk/...'": how to get the package. */
function packageHint(message) {
  const match = /Cannot find (?:module|package) '((?:@aws-sdk|@smithy)\/[^/']+)/.exec(message || '');
  if (match === null) return '';
  const has = (name) => nodePaths().some((folder) => fs.existsSync(path.join(folder, name, 'package.json')));
  if (!has('@aws-sdk/client-s3')) {
    return ' (the AWS SDK v3 bundle is not installed on this node: run `triggerfish runtimes ' +
      'install-sdk` there, or list the package in package.json)';
  }
  if (!has(match[1])) return ` (${match[1]} is not in the AWS SDK v3 bundle: list it in package.json)`;
  return '';
}

// aws-sdk v2 reads credentials and the region from the environment but no endpoint, and
// would call <service>.<region>.amazonaws.com. Its global configuration is set when a
// copy of it is loaded (each copy has its own), before the code that loaded it goes on:
// clients made afterwards use it, and what the code sets itself wins.
const configuredSdks = new WeakSet();
const CORE_SUFFIX = path.join(path.sep, 'aws-sdk', 'lib', 'core.js');

function endpointSettings(current) {
  const env = process.env;
  if (/^true$/i.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS || '')) return null;
  const settings = {};
  if (env.AWS_ENDPOINT_URL) settings.endpoint = env.AWS_ENDPOINT_URL;
  for (const [name, value] of Object.entries(env)) {
    const service = /^AWS_ENDPOINT_URL_([A-Z0-9_]+)$/.exec(name);
    if (service === null || !value) continue;
    // AWS_ENDPOINT_URL_SECRETS_MANAGER names the service v2 calls `secretsmanager`.
    const id = service[1].replace(/_/g, '').toLowerCase();
    settings[id] = { ...(current[id] || {}), endpoint: value };
  }
  if (settings.endpoint === undefined && settings.s3 === undefined) {
    return Object.keys(settings).length ? settings : null;
  }
  settings.s3ForcePathStyle = true; // bucket.127.0.0.1 does not resolve
  return settings;
}

function configureAwsSdkV2() {
  for (const [file, loaded] of Object.entries(Module._cache)) {
    if (!file.endsWith(CORE_SUFFIX)) continue;
    const AWS = loaded && loaded.exports;
    if (!AWS || !AWS.config || typeof AWS.config.update !== 'function' || configuredSdks.has(AWS)) continue;
    configuredSdks.add(AWS);
    const settings = endpointSettings(AWS.config);
    if (settings !== null) AWS.config.update(settings);
  }
}

function isAwsSdkV2(request) {
  // 'aws-sdk', 'aws-sdk/clients/s3', or the file an ES module's import resolved to.
  return typeof request === 'string' &&
    (request === 'aws-sdk' || request.startsWith('aws-sdk/') || request.includes(`${path.sep}aws-sdk${path.sep}`));
}

const loadModule = Module._load;
Module._load = function (request, parent, isMain) {
  const exported = loadModule.apply(this, arguments);
  if (isAwsSdkV2(request)) configureAwsSdkV2();
  return exported;
};

// ES modules do not look in NODE_PATH; a resolve hook (esm-paths.mjs) looks there once
// the function's own node_modules had nothing. Registered once, before the first ES
// module of a function is imported, and only when NODE_PATH has folders.
let esmHookRegistered = false;

function registerEsmPaths() {
  if (esmHookRegistered) return;
  esmHookRegistered = true;
  const folders = nodePaths();
  if (!folders.length || typeof Module.register !== 'function') return;
  Module.register(url.pathToFileURL(path.join(__dirname, 'esm-paths.mjs')).href, {
    data: { folders },
  });
}

// -- loading the handler -----------------------------------------------------------

class LoadError extends Error {
  constructor(errorType, message, trace) {
    super(message);
    this.errorType = errorType;
    this.trace = trace || [];
  }
}

function importEsm(file) {
  registerEsmPaths();
  return import(url.pathToFileURL(file).href);
}

async function importModule(file) {
  if (file.endsWith('.mjs')) return importEsm(file);
  try {
    return require(file);
  } catch (error) {
    // A .js file in a package of "type": "module" is an ES module.
    if (error && error.code === 'ERR_REQUIRE_ESM') return importEsm(file);
    throw error;
  }
}

async function loadHandler(handler, codeDir) {
  const dot = handler.lastIndexOf('.');
  if (dot <= 0 || dot === handler.length - 1) {
    throw new LoadError(
      'Runtime.MalformedHandlerName',
      `Bad handler '${handler}': expected 'module.function'`,
    );
  }
  const moduleName = handler.slice(0, dot).replace(/\./g, '/');
  const functionName = handler.slice(dot + 1);
  const base = path.resolve(codeDir, moduleName);
  const file = EXTENSIONS.map((ext) => base + ext).find((candidate) => fs.existsSync(candidate));
  if (file === undefined) {
    throw new LoadError(
      'Runtime.ImportModuleError',
      `Error: Cannot find module '${moduleName}' (looked for ${moduleName}.js, .mjs or .cjs in ${codeDir})`,
    );
  }
  let loaded;
  try {
    loaded = await importModule(file);
  } catch (error) {
    const doc = errorDocument(error);
    if (error instanceof SyntaxError) {
      throw new LoadError('Runtime.UserCodeSyntaxError', `SyntaxError: ${doc.errorMessage}`, doc.trace);
    }
    if (error && (error.code === 'MODULE_NOT_FOUND' || error.code === 'ERR_MODULE_NOT_FOUND')) {
      const message = `Error: ${doc.errorMessage}${packageHint(doc.errorMessage)}`;
      throw new LoadError('Runtime.ImportModuleError', message, doc.trace);
    }
    throw new LoadError(doc.errorType, doc.errorMessage, doc.trace);
  }
  let found = loaded ? loaded[functionName] : undefined;
  if (found === undefined && loaded && loaded.default && typeof loaded.default === 'object') {
    found = loaded.default[functionName];
  }
  if (typeof found !== 'function') {
    throw new LoadError(
      'Runtime.HandlerNotFound',
      `${path.basename(base)}.${functionName} is undefined or not exported`,
    );
  }
  return found;
}

// -- the channel -------------------------------------------------------------------

const channel = new net.Socket({ fd: Number(process.argv[2]), readable: true, writable: true });
const frames = new FrameReader();
const inbox = [];
let wake = null;
let closed = false;

channel.on('data', (chunk) => {
  for (const message of frames.feed(chunk)) inbox.push(message);
  if (wake && inbox.length) {
    const resume = wake;
    wake = null;
    resume();
  }
});
channel.on('close', () => process.exit(0));
channel.on('error', () => process.exit(0));

function receive() {
  if (inbox.length) return Promise.resolve(inbox.shift());
  if (closed) return Promise.resolve(null);
  return new Promise((resolve) => {
    wake = () => resolve(inbox.shift());
  });
}

function send(message) {
  return new Promise((resolve) => channel.write(encodeFrame(message), () => resolve()));
}

/** Seconds on CLOCK_MONOTONIC, the clock of Python's time.monotonic(). */
function monotonic() {
  return Number(process.hrtime.bigint()) / 1e9;
}

function exitAfter(message, code) {
  channel.write(encodeFrame(message), () => process.exit(code));
}

// -- one invocation ----------------------------------------------------------------

let init = null;
let handler = null;
let initDurationMs = null;
let current = null; // the invocation running, with its `finish(error, value)`
let exiting = false; // an uncaught error ended the invocation: exit after its Done
let pendingInitError = null; // an uncaught error while the handler was loading

// When a handler that returns no promise is done. Lambda's rule: once the event loop is
// empty, with what the handler gave its callback. Counting the loop's resources against
// their number when the call began fails both ways: a timer left by init (aws-sdk v2's
// end-of-support notice) that fires during the call lowers the count and ends the call
// while its own work is pending, and an interval left by init would hold every call to
// its timeout. So the work is told apart by when it began: the timers and immediates
// made during the call (seen through async_hooks, enabled only for such handlers), and
// the handles and requests active now that were not active when it began (a socket of
// a keep-alive pool, idle and unreferenced then, counts again once a call reuses it).
// Once the callback was called, the call waits for its own work only; before that, it
// ends with a null result only when nothing at all is pending, as on Lambda.

const callTimers = new Map(); // asyncId -> Timeout or Immediate made during the call
let ownTimer = false; // set while the bootstrap makes its own
const callHook = asyncHooks.createHook({
  init(asyncId, type, triggerAsyncId, resource) {
    if (!ownTimer && (type === 'Timeout' || type === 'Immediate')) callTimers.set(asyncId, resource);
  },
  destroy(asyncId) {
    callTimers.delete(asyncId);
  },
});

function activeHandlesAndRequests() {
  // Only the referenced handles are listed, as only they keep the loop alive.
  const handles = typeof process._getActiveHandles === 'function' ? process._getActiveHandles() : [];
  const requests = typeof process._getActiveRequests === 'function' ? process._getActiveRequests() : [];
  return handles.concat(requests);
}

function isPendingTimer(timer) {
  if (timer._destroyed) return false;
  return typeof timer.hasRef !== 'function' || timer.hasRef();
}

/** The work a call started, as seen from the work that was active when it began. */
function callWork(before) {
  for (const timer of callTimers.values()) if (isPendingTimer(timer)) return true;
  return activeHandlesAndRequests().some((active) => active !== channel && !before.has(active));
}

/** Anything at all that keeps the event loop alive, but the protocol socket. */
function anyWork() {
  return process.getActiveResourcesInfo().filter((kind) => kind !== 'PipeWrap').length > 0 ||
    activeHandlesAndRequests().some((active) => active !== channel);
}

function untracked(make) {
  ownTimer = true;
  try {
    return make();
  } finally {
    ownTimer = false;
  }
}

/** Resolves once `done()` holds, looked at every millisecond, or at `deadline`. */
function whenSettled(done, deadline) {
  return new Promise((resolve) => {
    // Checked from an immediate: inside a timer's callback that timer still counts.
    // The bootstrap's own timers are not the call's.
    const check = () => {
      if (done() || Date.now() >= deadline) resolve();
      else untracked(() => setTimeout(() => untracked(() => setImmediate(check)), 1));
    };
    untracked(() => setImmediate(check));
  });
}

function isCloudEvent(event) {
  return (
    event !== null && typeof event === 'object' && !Array.isArray(event) &&
    'specversion' in event && 'id' in event && 'source' in event && 'type' in event
  );
}

function makeEmit(event) {
  return function emit(topic, type, data, options = {}) {
    if (typeof topic !== 'string' || !topic) throw new TypeError('emit needs a topic name');
    if (typeof type !== 'string' || !type) throw new TypeError('emit needs an event type');
    const extensions = {};
    if (isCloudEvent(event) && typeof event.id === 'string') {
      extensions.causationid = event.id;
      extensions.correlationid =
        typeof event.correlationid === 'string' ? event.correlationid : event.id;
    }
    for (const [name, value] of Object.entries(options.extensions || {})) {
      if (!['string', 'number', 'boolean'].includes(typeof value) ||
          (typeof value === 'number' && !Number.isInteger(value))) {
        throw new TypeError(`extension '${name}' must be a string, integer or boolean`);
      }
      extensions[name] = value;
    }
    const json = JSON.stringify(data);
    channel.write(encodeFrame([
      'e', topic, type, json === undefined ? null : JSON.parse(json),
      options.source ?? null, options.subject ?? null, options.id ?? null, extensions,
    ]));
  };
}

function runHandler(event, context, deadline) {
  return new Promise((resolve) => {
    let settled = false;
    let tracking = false;
    const finish = (error, value) => {
      if (settled) return;
      settled = true;
      if (tracking) {
        callHook.disable();
        callTimers.clear();
      }
      resolve({ error, value });
    };
    current = { finish };
    let answered = null; // what the handler gave its callback
    const callback = (error, value) => {
      if (answered !== null) return;
      answered = { error, value };
      if (!context.callbackWaitsForEmptyEventLoop) finish(error, value);
    };
    context.done = (error, value) => callback(error, value);
    context.succeed = (value) => callback(null, value);
    context.fail = (error) => callback(error ?? new Error('handled'));
    // An async function's promise says when it is done: no need to watch its work.
    tracking = !(handler instanceof AsyncFunction);
    const before = tracking ? new Set(activeHandlesAndRequests()) : null;
    if (tracking) callHook.enable();
    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (error) {
      finish(error === undefined ? new Error('undefined thrown') : error);
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then(
        (value) => finish(null, value),
        (error) => finish(error ?? new Error('the handler rejected with no reason')),
      );
    } else {
      // As on Lambda: a handler that does not return a promise ends with what it gave its
      // callback once its work is done (sooner with callbackWaitsForEmptyEventLoop =
      // false), or with a null result once the event loop is empty.
      const done = () => (answered === null ? !anyWork() : !callWork(before));
      whenSettled(done, deadline).then(() => {
        if (answered === null) finish(null, undefined);
        else finish(answered.error, answered.value);
      });
    }
  });
}

const ID_LENGTH = 26;

// The invocation's trace variables (_X_AMZN_TRACE_ID, TRACEPARENT, TRACESTATE), as
// process.env shows them, kept here rather than set: setenv keeps every distinct value
// it was ever given for the life of the process (glibc), so a value of its own for each
// invocation would grow an environment for as long as it lives. A process the handler
// starts with process.env gets them too (child_process reads the keys through here).
const TRACE_VARIABLES = new Set(['_X_AMZN_TRACE_ID', 'TRACEPARENT', 'TRACESTATE']);
const traceVariables = new Map();
process.env = new Proxy(process.env, {
  get: (env, key) => (traceVariables.has(key) ? traceVariables.get(key) : Reflect.get(env, key)),
  has: (env, key) => traceVariables.has(key) || Reflect.has(env, key),
  set: (env, key, value) => {
    if (!TRACE_VARIABLES.has(key)) return Reflect.set(env, key, value);
    traceVariables.set(key, String(value));
    return true;
  },
  deleteProperty: (env, key) => traceVariables.delete(key) || Reflect.deleteProperty(env, key),
  ownKeys: (env) => [...new Set([...Reflect.ownKeys(env), ...traceVariables.keys()])],
  getOwnPropertyDescriptor: (env, key) => (traceVariables.has(key)
    ? { value: traceVariables.get(key), writable: true, enumerable: true, configurable: true }
    : Reflect.getOwnPropertyDescriptor(env, key)),
});

// The invocation's own X-Ray header when the node sends none: the rule of
// triggerfish/runtime/tracing.py (trace_header), character for character.
function traceHeader(requestId) {
  const seconds = (Math.floor(Date.now() / 1000) >>> 0).toString(16).padStart(8, '0');
  if (requestId.length === ID_LENGTH && /^[\x00-\x7f]*$/.test(requestId)) {
    const tail = Buffer.from(requestId.slice(-12), 'latin1').toString('hex');
    return `Root=1-${seconds}-${tail};Parent=${tail.slice(8)};Sampled=0`;
  }
  return hashedHeader(requestId);
}

// An id that is not one of Triggerfish's (a caller's own request id): hashed.
function hashedHeader(requestId) {
  const digest = require('crypto').createHash('sha256').update(requestId, 'utf8').digest('hex');
  const seconds = (Math.floor(Date.now() / 1000) >>> 0).toString(16).padStart(8, '0');
  return `Root=1-${seconds}-${digest.slice(0, 24)};Parent=${digest.slice(24, 40)};Sampled=0`;
}

async function invoke(message) {
  const [, requestId, payload, invokedArn, traceId, clientContext] = message;
  currentRequestId = requestId;
  traceVariables.set('_X_AMZN_TRACE_ID', traceId || traceHeader(requestId));
  // The W3C trace context of the handler's span, for the function's own OpenTelemetry
  // SDK: TRACEPARENT / TRACESTATE, and context.traceContext (docs/tracing.md).
  const traceContext = {};
  for (const [key, name, value] of [['TRACEPARENT', 'traceparent', message[7]],
    ['TRACESTATE', 'tracestate', message[8]]]) {
    if (value) traceVariables.set(key, (traceContext[name] = value));
    else traceVariables.delete(key);
  }
  resetPeak();
  const startedAt = Date.now() / 1000;
  const started = performance.now();
  const deadline = Date.now() + init.timeout * 1000;
  let status = 'ok';
  let result = null;
  let failure = null;
  let event;
  try {
    event = payload && payload.length ? JSON.parse(payload.toString('utf8')) : {};
  } catch (error) {
    failure = {
      errorType: 'Runtime.UnmarshalError',
      errorMessage: `Unable to parse the event: ${error.message}`,
      trace: [],
    };
  }
  if (failure === null) {
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      functionName: init.functionName,
      functionVersion: init.functionVersion,
      invokedFunctionArn: invokedArn,
      memoryLimitInMB: String(init.memoryMb),
      awsRequestId: requestId,
      logGroupName: init.logGroup,
      logStreamName: init.logStream,
      identity: undefined,
      clientContext: clientContext ?? undefined,
      traceContext,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      emit: makeEmit(event),
    };
    const outcome = await runHandler(event, context, deadline);
    current = null;
    if (outcome.error !== null && outcome.error !== undefined) {
      failure = errorDocument(outcome.error);
      if (!jsonLogs) logError('Invoke Error', failure); // JSON: the record after the output
    } else {
      try {
        const json = JSON.stringify(outcome.value === undefined ? null : outcome.value);
        result = Buffer.from(json === undefined ? 'null' : json, 'utf8');
      } catch (error) {
        failure = {
          errorType: 'Runtime.MarshalError',
          errorMessage: `Unable to stringify response body: ${error.message}`,
          trace: [],
        };
      }
    }
  }
  const durationMs = performance.now() - started;
  const peak = peakMb();
  if (failure !== null) status = 'error';
  if (peak > init.memoryMb) {
    status = 'oom';
    result = null;
    failure = {
      errorType: 'Runtime.OutOfMemory',
      errorMessage: `Function used ${peak} MB, over its memory size of ${init.memoryMb} MB`,
      trace: [],
    };
  }
  if (jsonLogs) {
    const reported = exiting && status === 'error' ? 'crashed' : status; // as main() answers
    const logs = jsonInvocationLogs(requestId, drain(), failure, reported, durationMs, init.memoryMb, peak, initDurationMs);
    return finishInvocation(status, result, failure, logs, startedAt, durationMs, peak);
  }
  let logs = `START RequestId: ${requestId} Version: ${init.functionVersion}\n` + drain();
  if (status === 'oom') logs += `[ERROR] ${failure.errorType}: ${failure.errorMessage}\n`;
  logs +=
    `END RequestId: ${requestId}\n` +
    reportLine(requestId, durationMs, init.memoryMb, peak, initDurationMs, status === 'oom' ? 'oom' : null);
  return finishInvocation(status, result, failure, logs, startedAt, durationMs, peak);
}

function finishInvocation(status, result, failure, logs, startedAt, durationMs, peak) {
  initDurationMs = null; // reported on the first invocation only
  currentRequestId = '';
  return [
    'd', status, result,
    failure && failure.errorType, failure && failure.errorMessage, failure ? failure.trace : [],
    logs, new Float(startedAt), new Float(durationMs), peak,
  ];
}

// -- failures outside the handler's promise -----------------------------------------

function fatal(error, errorType) {
  const doc = errorDocument(error);
  if (errorType) {
    doc.errorMessage = `${doc.errorType}: ${doc.errorMessage}`;
    doc.errorType = errorType;
  }
  if (current !== null) {
    // Ends the invocation with this error; the environment exits after its Done.
    exiting = true;
    current.finish(Object.assign(new Error(doc.errorMessage), { name: doc.errorType, stack: doc.trace.join('\n') }));
  } else if (init !== null && handler === null) {
    pendingInitError = doc;
  } else {
    logError('Uncaught Exception', doc);
    process.exit(129);
  }
}

process.on('uncaughtException', (error) => fatal(error, null));
process.on('unhandledRejection', (reason) => fatal(reason, 'Runtime.UnhandledPromiseRejection'));

// -- main ----------------------------------------------------------------------------

function setup(message) {
  const [, cwd, env] = message;
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, env);
  process.chdir(cwd);
  Module._initPaths(); // NODE_PATH may have changed
}

async function initialise(message) {
  const [, handlerName, functionName, functionVersion, memoryMb, timeout, limit, logGroup, logStream, codeDir] = message;
  init = { handlerName, functionName, functionVersion, memoryMb, timeout, logGroup, logStream, codeDir };
  logLimit = limit;
  budget = limit;
  configureLogs();
  const started = performance.now();
  try {
    handler = await loadHandler(handlerName, codeDir);
    if (pendingInitError !== null) throw new LoadError(pendingInitError.errorType, pendingInitError.errorMessage, pendingInitError.trace);
  } catch (error) {
    const doc = error instanceof LoadError
      ? { errorType: error.errorType, errorMessage: error.message, trace: error.trace }
      : errorDocument(error);
    logError('Init Error', doc);
    const elapsed = performance.now() - started;
    const logs = drain();
    exitAfter(['f', doc.errorType, doc.errorMessage, doc.trace, new Float(elapsed), logs, false], 0);
    return false;
  }
  initDurationMs = performance.now() - started;
  await send(['r', new Float(initDurationMs), drain()]);
  return true;
}

async function main() {
  patchStream(process.stdout);
  patchStream(process.stderr);
  patchConsole();
  let message = await receive();
  if (message && message[0] === 'n') {
    setup(message);
    message = await receive();
  }
  if (!message || message[0] !== 'i') process.exit(2);
  if (!(await initialise(message))) return;
  for (;;) {
    message = await receive();
    if (message === null || message === undefined) return;
    if (message[0] !== 'v') continue;
    const startBy = message[6];
    if (startBy !== null && startBy !== undefined && monotonic() >= startBy) {
      await send(['x', message[1]]);
      continue;
    }
    const done = await invoke(message);
    if (done[1] === 'oom') {
      exitAfter(done, EXIT_OUT_OF_MEMORY);
      return;
    }
    if (exiting) {
      // "crashed": the executor discards this environment instead of reusing it.
      done[1] = 'crashed';
      exitAfter(done, 129);
      return;
    }
    await send(done); // written before the next invocation's start-by is read
  }
}

main();
