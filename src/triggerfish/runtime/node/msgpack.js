'use strict';
// The msgpack subset that Triggerfish's worker protocol uses, in plain JavaScript (the
// Node.js environment must not depend on any package). Encodes null, booleans,
// integers, floats, strings, byte buffers, arrays and plain objects; decodes every
// msgpack type but extensions. `new Float(x)` forces a float encoding for a field
// that the executor declares as a float.

class Float {
  constructor(value) {
    this.value = value;
  }
}

class Writer {
  constructor(size) {
    this.buffer = Buffer.allocUnsafe(size);
    this.length = 0;
  }

  reserve(extra) {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  byte(value) {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  head(value, size, write) {
    this.reserve(1 + size);
    this.buffer[this.length] = value;
    write.call(this.buffer, this.length + 1);
    this.length += 1 + size;
  }

  bytes(data) {
    this.reserve(data.length);
    if (typeof data === 'string') {
      this.length += this.buffer.write(data, this.length, 'utf8');
    } else {
      this.buffer.set(data, this.length);
      this.length += data.length;
    }
  }
}

function writeUint(writer, value) {
  if (value < 0x80) writer.byte(value);
  else if (value < 0x100) writer.head(0xcc, 1, function (at) { this.writeUInt8(value, at); });
  else if (value < 0x10000) writer.head(0xcd, 2, function (at) { this.writeUInt16BE(value, at); });
  else if (value < 0x100000000) writer.head(0xce, 4, function (at) { this.writeUInt32BE(value, at); });
  else writer.head(0xcf, 8, function (at) { this.writeBigUInt64BE(BigInt(value), at); });
}

function writeInt(writer, value) {
  if (value >= 0) return writeUint(writer, value);
  if (value >= -32) writer.byte(value & 0xff);
  else if (value >= -0x80) writer.head(0xd0, 1, function (at) { this.writeInt8(value, at); });
  else if (value >= -0x8000) writer.head(0xd1, 2, function (at) { this.writeInt16BE(value, at); });
  else if (value >= -0x80000000) writer.head(0xd2, 4, function (at) { this.writeInt32BE(value, at); });
  else writer.head(0xd3, 8, function (at) { this.writeBigInt64BE(BigInt(value), at); });
}

function writeFloat(writer, value) {
  writer.head(0xcb, 8, function (at) { this.writeDoubleBE(value, at); });
}

function writeLength(writer, size, small, smallLimit, codes) {
  if (small !== null && size < smallLimit) writer.byte(small | size);
  else if (codes[0] !== null && size < 0x100) writer.head(codes[0], 1, function (at) { this.writeUInt8(size, at); });
  else if (size < 0x10000) writer.head(codes[1], 2, function (at) { this.writeUInt16BE(size, at); });
  else writer.head(codes[2], 4, function (at) { this.writeUInt32BE(size, at); });
}

function write(writer, value) {
  if (value === null || value === undefined) {
    writer.byte(0xc0);
  } else if (value === true) {
    writer.byte(0xc3);
  } else if (value === false) {
    writer.byte(0xc2);
  } else if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) writeInt(writer, value);
    else writeFloat(writer, value);
  } else if (value instanceof Float) {
    writeFloat(writer, value.value);
  } else if (typeof value === 'bigint') {
    if (value >= 0n) writer.head(0xcf, 8, function (at) { this.writeBigUInt64BE(value, at); });
    else writer.head(0xd3, 8, function (at) { this.writeBigInt64BE(value, at); });
  } else if (typeof value === 'string') {
    writeLength(writer, Buffer.byteLength(value, 'utf8'), 0xa0, 32, [0xd9, 0xda, 0xdb]);
    writer.bytes(value);
  } else if (value instanceof Uint8Array) {
    writeLength(writer, value.length, null, 0, [0xc4, 0xc5, 0xc6]);
    writer.bytes(value);
  } else if (Array.isArray(value)) {
    writeLength(writer, value.length, 0x90, 16, [null, 0xdc, 0xdd]);
    for (const item of value) write(writer, item);
  } else if (typeof value === 'object') {
    const keys = Object.keys(value).filter((key) => value[key] !== undefined);
    writeLength(writer, keys.length, 0x80, 16, [null, 0xde, 0xdf]);
    for (const key of keys) {
      write(writer, key);
      write(writer, value[key]);
    }
  } else {
    throw new TypeError(`cannot encode a value of type ${typeof value}`);
  }
}

/** One frame: a 4-byte big-endian length, then the msgpack body. */
function encodeFrame(message) {
  const writer = new Writer(256);
  writer.length = 4;
  write(writer, message);
  writer.buffer.writeUInt32BE(writer.length - 4, 0);
  return writer.buffer.subarray(0, writer.length);
}

class Reader {
  constructor(buffer) {
    this.buffer = buffer;
    this.at = 0;
  }

  take(size) {
    const start = this.at;
    this.at += size;
    if (this.at > this.buffer.length) throw new RangeError('truncated msgpack data');
    return start;
  }

  str(size) {
    const start = this.take(size);
    return this.buffer.toString('utf8', start, start + size);
  }

  bin(size) {
    const start = this.take(size);
    return Buffer.from(this.buffer.subarray(start, start + size));
  }

  array(size) {
    const out = new Array(size);
    for (let i = 0; i < size; i++) out[i] = this.read();
    return out;
  }

  map(size) {
    const out = {};
    for (let i = 0; i < size; i++) {
      const key = this.read();
      out[String(key)] = this.read();
    }
    return out;
  }

  read() {
    const b = this.buffer;
    const code = b[this.take(1)];
    if (code < 0x80) return code;
    if (code < 0x90) return this.map(code & 0x0f);
    if (code < 0xa0) return this.array(code & 0x0f);
    if (code < 0xc0) return this.str(code & 0x1f);
    if (code >= 0xe0) return code - 0x100;
    switch (code) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(b.readUInt8(this.take(1)));
      case 0xc5: return this.bin(b.readUInt16BE(this.take(2)));
      case 0xc6: return this.bin(b.readUInt32BE(this.take(4)));
      case 0xca: return b.readFloatBE(this.take(4));
      case 0xcb: return b.readDoubleBE(this.take(8));
      case 0xcc: return b.readUInt8(this.take(1));
      case 0xcd: return b.readUInt16BE(this.take(2));
      case 0xce: return b.readUInt32BE(this.take(4));
      case 0xcf: return narrow(b.readBigUInt64BE(this.take(8)));
      case 0xd0: return b.readInt8(this.take(1));
      case 0xd1: return b.readInt16BE(this.take(2));
      case 0xd2: return b.readInt32BE(this.take(4));
      case 0xd3: return narrow(b.readBigInt64BE(this.take(8)));
      case 0xd9: return this.str(b.readUInt8(this.take(1)));
      case 0xda: return this.str(b.readUInt16BE(this.take(2)));
      case 0xdb: return this.str(b.readUInt32BE(this.take(4)));
      case 0xdc: return this.array(b.readUInt16BE(this.take(2)));
      case 0xdd: return this.array(b.readUInt32BE(this.take(4)));
      case 0xde: return this.map(b.readUInt16BE(this.take(2)));
      case 0xdf: return this.map(b.readUInt32BE(this.take(4)));
      default: throw new TypeError(`unsupported msgpack type 0x${code.toString(16)}`);
    }
  }
}

function narrow(big) {
  const small = Number(big);
  return Number.isSafeInteger(small) ? small : big;
}

function decode(buffer) {
  return new Reader(buffer).read();
}

/** Feeds bytes in, yields whole decoded frames. */
class FrameReader {
  constructor() {
    this.chunks = [];
    this.size = 0;
  }

  feed(chunk) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const messages = [];
    while (this.size >= 4) {
      if (this.chunks[0].length < 4) this.flatten();
      const length = this.chunks[0].readUInt32BE(0);
      if (this.size < 4 + length) break; // wait for the whole frame before copying
      this.flatten();
      const buffer = this.chunks[0];
      messages.push(decode(buffer.subarray(4, 4 + length)));
      const rest = buffer.subarray(4 + length);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
    }
    return messages;
  }

  flatten() {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
  }
}

module.exports = { Float, encodeFrame, decode, FrameReader };
