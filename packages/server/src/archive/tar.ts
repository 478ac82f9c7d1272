import { archiveInvalid } from './format.js';

/**
 * A minimal POSIX ustar writer and streaming reader: regular files only, names up to 100
 * bytes. Enough for a snapshot archive that `tar -tzf` and `tar -xzf` can also open; written
 * here rather than pulled in as a dependency because the subset we need is small.
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
  return Buffer.alloc(paddingBytes(size));
}

/** Two zero blocks end an archive. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(2 * blockBytes);
}

/** One file's header, as `admit` sees it before any of the file's bytes are read. */
export interface TarEntryHeader {
  readonly name: string;
  readonly size: number;
}

/**
 * Every file in a tar stream, in order, each read whole only once `admit` accepted its
 * header (so `admit` bounds what is buffered: it throws for a name or size it refuses).
 * Holds one file plus one source chunk. After the end-of-archive blocks, the rest of the
 * source must be zeros (writers may pad to a record), and it is read to its end so that
 * the source can check what follows (gunzip's CRC and length). Refuses
 * (SNAPSHOT_ARCHIVE_INVALID) a bad header checksum, a non-regular file, a file running past
 * the end, a missing end-of-archive trailer and data after it.
 */
export async function* readTarStream(
  source: AsyncIterable<Buffer>,
  admit: (header: TarEntryHeader) => void,
): AsyncGenerator<{ name: string; data: Buffer }, void, void> {
  const bytes = new ByteQueue(source[Symbol.asyncIterator]());
  let at = 0;
  for (;;) {
    const header = await bytes.take(blockBytes);
    if (header.length < blockBytes) throw archiveInvalid('the tar ends without its end-of-archive blocks');
    if (isZero(header)) break;
    const entry = parseHeader(header, at);
    admit(entry);
    const data = await bytes.take(entry.size);
    if (data.length < entry.size) throw archiveInvalid(`tar file ${entry.name} is truncated`);
    const padding = await bytes.take(paddingBytes(entry.size));
    if (padding.length < paddingBytes(entry.size))
      throw archiveInvalid(`tar file ${entry.name} is truncated`);
    at += blockBytes + entry.size + padding.length;
    yield { name: entry.name, data };
  }
  const second = await bytes.take(blockBytes);
  if (second.length < blockBytes || !isZero(second)) {
    throw archiveInvalid('the tar ends without its second end-of-archive block');
  }
  for await (const chunk of bytes.rest()) {
    if (!isZero(chunk)) throw archiveInvalid('the archive holds data after its end-of-archive blocks');
  }
}

/** The header of one regular file at byte `at`, checksum verified. */
function parseHeader(header: Buffer, at: number): TarEntryHeader {
  const stored = readOctal(header, { at: 148, width: 8 });
  const copy = Buffer.from(header);
  copy.fill(0x20, 148, 156);
  if (stored !== checksum(copy)) throw archiveInvalid(`a tar header at byte ${at} has a bad checksum`);
  const type = header.toString('latin1', 156, 157);
  if (type !== '0' && type !== '\u0000') {
    throw archiveInvalid(`the tar holds something other than a regular file (type ${type})`);
  }
  const name = field(header, { at: 0, width: nameBytesMax });
  // A ustar name may be split into a prefix (at 345) and a name; our writer never splits.
  const prefix =
    header.toString('latin1', 257, 262) === 'ustar' ? field(header, { at: 345, width: 155 }) : '';
  return {
    name: prefix === '' ? name : `${prefix}/${name}`,
    size: readOctal(header, { at: 124, width: 12 }),
  };
}

/**
 * Bytes from an async source, taken in exact amounts. Holds what was taken from the source
 * but not yet handed out: at most the amount asked for plus one source chunk.
 */
class ByteQueue {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Exactly `count` bytes; fewer only when the source ends first. */
  async take(count: number): Promise<Buffer> {
    while (this.buffered < count) {
      const next = await this.source.next();
      if (next.done === true) break;
      this.chunks.push(next.value);
      this.buffered += next.value.length;
    }
    const all =
      this.chunks.length === 1 && this.chunks[0] !== undefined ? this.chunks[0] : Buffer.concat(this.chunks);
    const taken = all.subarray(0, Math.min(count, all.length));
    const rest = all.subarray(taken.length);
    this.chunks = rest.length === 0 ? [] : [rest];
    this.buffered = rest.length;
    return taken;
  }

  /** Whatever is left, to the source's end. */
  async *rest(): AsyncGenerator<Buffer, void, void> {
    yield* this.chunks;
    this.chunks = [];
    this.buffered = 0;
    for (;;) {
      const next = await this.source.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
}

function paddingBytes(size: number): number {
  const rest = size % blockBytes;
  return rest === 0 ? 0 : blockBytes - rest;
}

function isZero(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}

function checksum(header: Buffer): number {
  let sum = 0;
  for (const byte of header) sum += byte;
  return sum;
}

/** A NUL-terminated (or full-width) text field. */
function field(header: Buffer, options: { at: number; width: number }): string {
  const end = header.indexOf(0, options.at);
  const stop = end === -1 || end > options.at + options.width ? options.at + options.width : end;
  return header.toString('utf8', options.at, stop);
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
  if (!/^[0-7]+$/u.test(text)) {
    throw archiveInvalid(`a tar header field is not octal: ${JSON.stringify(text)}`);
  }
  return Number.parseInt(text, 8);
}
