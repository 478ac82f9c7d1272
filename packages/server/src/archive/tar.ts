import { ConclaveError } from '../errors.js';

/**
 * A minimal POSIX ustar writer and reader: regular files only, names up to 100 bytes.
 * Enough for a snapshot archive that `tar -tzf` and `tar -xzf` can also open; written here
 * rather than pulled in as a dependency because the subset we need is small.
 */

const blockBytes = 512;
const nameBytesMax = 100;
/** 11 octal digits: the ustar size field's limit (8 GiB - 1). */
export const tarFileBytesMax = 8 ** 11 - 1;

/** The 512-byte header of one regular file. */
export function tarHeader(options: { name: string; size: number; mtimeMs: number }): Buffer {
  const { name, size } = options;
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length > nameBytesMax) {
    throw new Error(`tar: a file name is 1 to ${nameBytesMax} bytes: ${name}`);
  }
  if (!Number.isSafeInteger(size) || size < 0 || size > tarFileBytesMax) {
    throw new Error(`tar: file ${name} has size ${size}, over ${tarFileBytesMax}`);
  }
  const header = Buffer.alloc(blockBytes);
  nameBytes.copy(header, 0);
  writeOctal(header, { at: 100, width: 8, value: 0o644 });
  writeOctal(header, { at: 108, width: 8, value: 0 });
  writeOctal(header, { at: 116, width: 8, value: 0 });
  writeOctal(header, { at: 124, width: 12, value: size });
  writeOctal(header, { at: 136, width: 12, value: Math.floor(options.mtimeMs / 1000) });
  header.write('0', 156, 'latin1');
  header.write('ustar\u000000', 257, 'latin1');
  // The checksum is computed with its own field read as eight spaces.
  header.fill(0x20, 148, 156);
  writeOctal(header, { at: 148, width: 7, value: checksum(header) });
  return header;
}

/** Zero bytes that pad a file of `size` bytes to a whole block. */
export function tarPadding(size: number): Buffer {
  const rest = size % blockBytes;
  return Buffer.alloc(rest === 0 ? 0 : blockBytes - rest);
}

/** Two zero blocks end an archive. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(2 * blockBytes);
}

/**
 * Every file in a tar, in order. Refuses (SNAPSHOT_ARCHIVE_INVALID) a bad header checksum,
 * a non-regular file, a file running past the end, or a missing end-of-archive trailer.
 */
export function readTar(tar: Buffer): { name: string; data: Buffer }[] {
  const files: { name: string; data: Buffer }[] = [];
  let at = 0;
  for (;;) {
    if (at + blockBytes > tar.length) throw invalid('the tar ends without its end-of-archive blocks');
    const header = tar.subarray(at, at + blockBytes);
    if (header.every((byte) => byte === 0)) return files;
    const stored = readOctal(header, { at: 148, width: 8 });
    const copy = Buffer.from(header);
    copy.fill(0x20, 148, 156);
    if (stored !== checksum(copy)) throw invalid(`a tar header at byte ${at} has a bad checksum`);
    const type = header.toString('latin1', 156, 157);
    if (type !== '0' && type !== '\u0000') throw invalid(`the tar holds a non-regular file (type ${type})`);
    const nameEnd = header.indexOf(0);
    const name = header.toString(
      'utf8',
      0,
      nameEnd === -1 || nameEnd > nameBytesMax ? nameBytesMax : nameEnd,
    );
    const size = readOctal(header, { at: 124, width: 12 });
    const start = at + blockBytes;
    if (start + size > tar.length) throw invalid(`tar file ${name} is truncated`);
    files.push({ name, data: tar.subarray(start, start + size) });
    at = start + size + tarPadding(size).length;
  }
}

function checksum(header: Buffer): number {
  let sum = 0;
  for (const byte of header) sum += byte;
  return sum;
}

function writeOctal(header: Buffer, options: { at: number; width: number; value: number }): void {
  const digits = options.value.toString(8).padStart(options.width - 1, '0');
  header.write(`${digits}\u0000`, options.at, 'latin1');
}

function readOctal(header: Buffer, options: { at: number; width: number }): number {
  // The field ends at its first NUL, padded with spaces either side by some writers.
  const raw = header.toString('latin1', options.at, options.at + options.width);
  const nul = raw.indexOf('\u0000');
  const text = (nul === -1 ? raw : raw.slice(0, nul)).trim();
  if (!/^[0-7]+$/u.test(text)) throw invalid(`a tar header field is not octal: ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

function invalid(message: string): ConclaveError {
  return new ConclaveError({ code: 'SNAPSHOT_ARCHIVE_INVALID', message });
}
