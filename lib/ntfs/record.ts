/**
 * MFT records ("FILE") and the attribute records inside them, resident and non-resident.
 * Parsers work on a record whose fixups were already undone ({@linkcode undoFixups}).
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { i32, u16, u32, u64, u8 } from "../_internal/bytes.ts";
import { decodeRunlist, type NtfsRun } from "./runlist.ts";

/** MFT record flag: the record is in use (MFT_RECORD_IN_USE). */
export const MFT_RECORD_IN_USE = 0x0001;
/** MFT record flag: the record is a directory (MFT_RECORD_IS_DIRECTORY). */
export const MFT_RECORD_IS_DIRECTORY = 0x0002;

/** Attribute type codes used by fsimage. */
export const AttrType = {
  STANDARD_INFORMATION: 0x10,
  ATTRIBUTE_LIST: 0x20,
  FILE_NAME: 0x30,
  OBJECT_ID: 0x40,
  SECURITY_DESCRIPTOR: 0x50,
  VOLUME_NAME: 0x60,
  VOLUME_INFORMATION: 0x70,
  DATA: 0x80,
  INDEX_ROOT: 0x90,
  INDEX_ALLOCATION: 0xa0,
  BITMAP: 0xb0,
  REPARSE_POINT: 0xc0,
  EA_INFORMATION: 0xd0,
  EA: 0xe0,
  LOGGED_UTILITY_STREAM: 0x100,
  END: 0xffffffff,
} as const;

/** The header of an MFT record. */
export interface MftRecordHeader {
  /** usa_ofs (0x04). */
  usaOffset: number;
  /** usa_count (0x06). */
  usaCount: number;
  /** sequence_number (0x10). */
  sequenceNumber: number;
  /** link_count (0x12). */
  linkCount: number;
  /** attrs_offset (0x14): the first attribute. */
  attrsOffset: number;
  /** flags (0x16): {@linkcode MFT_RECORD_IN_USE}, {@linkcode MFT_RECORD_IS_DIRECTORY}. */
  flags: number;
  /** bytes_in_use (0x18). */
  bytesInUse: number;
  /** bytes_allocated (0x1C): the record size. */
  bytesAllocated: number;
  /** base_mft_record (0x20), the record number only (48 bits). */
  baseRecord: number;
  /**
   * True for an extent record: base_mft_record (reference and sequence number) is not 0.
   * An extent of $MFT itself has record number 0 but a non-zero sequence number.
   */
  isExtent: boolean;
  /** True when the record is in use. */
  inUse: boolean;
}

/** An attribute record of an MFT record. */
export interface NtfsAttribute {
  /** Attribute type code (0x00). */
  type: number;
  /** Byte offset of the attribute record inside its MFT record. */
  offset: number;
  /** Length of the attribute record (0x04). */
  length: number;
  /** True for a non-resident attribute (0x08). */
  nonResident: boolean;
  /** The attribute's name (UTF-16LE decoded), "" when unnamed. */
  name: string;
  /** flags (0x0C): COMPRESSED 0x0001, ENCRYPTED 0x4000, SPARSE 0x8000. */
  flags: number;
  /** instance (0x0E). */
  instance: number;
  /** Resident: offset of the value inside the MFT record. */
  valueOffset: number;
  /** Resident: value_length (0x10). */
  valueLength: number;
  /** Non-resident: lowest_vcn (0x10). */
  lowestVcn: number;
  /** Non-resident: highest_vcn (0x18). */
  highestVcn: number;
  /** Non-resident: allocated_size (0x28). */
  allocatedSize: number;
  /** Non-resident: data_size (0x30). */
  dataSize: number;
  /** Non-resident: initialized_size (0x38). */
  initializedSize: number;
  /** Non-resident: compression_unit (0x22), log2 of clusters. */
  compressionUnit: number;
  /** Non-resident: the decoded runlist. */
  runs: NtfsRun[];
  /** Lenient parsing only: the name lies outside the attribute (its `name` is then ""). */
  nameInvalid?: boolean;
  /**
   * value_length as recorded, when `valueLength` had to be clamped (lenient parsing), or the
   * same 4 bytes of a non-resident attribute (libntfs reads them when it expects a value).
   */
  declaredValueLength?: number;
  /**
   * Lenient parsing only: the error decoding this attribute's runlist (its `runs` are then
   * empty); a walk that uses the attribute throws it.
   */
  runlistError?: CorruptImageError;
}

function corrupt(
  what: string,
  base: number,
  at: number,
  field: string,
  structure = "MFT record",
): never {
  throw new CorruptImageError(
    `Cannot read NTFS MFT record: ${what} (byte 0x${(base + at).toString(16)})`,
    { format: "ntfs", structure, field, offset: base + at },
  );
}

/**
 * Parses and checks an MFT record header. `base` is the record's absolute byte offset (for
 * messages). Returns undefined when the record is not a usable "FILE" record of this size
 * (the records ntfsclone skips silently).
 */
export function parseMftRecordHeader(
  rec: Uint8Array,
  base = 0,
  options: { lenient?: boolean } = {},
): MftRecordHeader | undefined {
  if (rec.length < 48 || u32(rec, 0) !== 0x454c4946) return undefined; // "FILE"
  const h: MftRecordHeader = {
    usaOffset: u16(rec, 4),
    usaCount: u16(rec, 6),
    sequenceNumber: u16(rec, 0x10),
    linkCount: u16(rec, 0x12),
    attrsOffset: u16(rec, 0x14),
    flags: u16(rec, 0x16),
    bytesInUse: u32(rec, 0x18),
    bytesAllocated: u32(rec, 0x1c),
    baseRecord: u32(rec, 0x20) + u16(rec, 0x24) * 0x100000000,
    isExtent: u32(rec, 0x20) !== 0 || u32(rec, 0x24) !== 0,
    inUse: (u16(rec, 0x16) & MFT_RECORD_IN_USE) !== 0,
  };
  if (h.bytesAllocated !== rec.length) return undefined;
  if (options.lenient) {
    // The check libntfs applies to the records of its MFT scan: alignment and bounds only.
    return h.attrsOffset % 8 === 0 && h.attrsOffset <= rec.length ? h : undefined;
  }
  if (h.attrsOffset % 8 !== 0 || h.attrsOffset < 0x18 || h.attrsOffset > rec.length - 8) {
    if (h.inUse) {
      corrupt(
        `attrs_offset 0x${h.attrsOffset.toString(16)} is invalid`,
        base,
        0x14,
        "attrs_offset",
      );
    }
    return undefined;
  }
  if (h.bytesInUse > rec.length || h.bytesInUse < h.attrsOffset + 4) {
    if (h.inUse) corrupt(`bytes_in_use ${h.bytesInUse} is invalid`, base, 0x18, "bytes_in_use");
    return undefined;
  }
  return h;
}

/**
 * The full record check libntfs applies to the records it reads while mounting
 * (ntfs_mft_record_check without the per-type attribute checks): the magic, the sizes, the
 * alignment, attributes in type order and fitting, and an end marker inside bytes_in_use.
 * Returns libntfs's message for the first problem, or undefined. `rec` has its fixups undone
 * (a torn record carries the "BAAD" magic).
 */
export function strictRecordProblem(rec: Uint8Array, mftNo: number): string | undefined {
  const rs = rec.length;
  const magic = u32(rec, 0);
  if (magic !== 0x454c4946) return `Record ${mftNo} has no FILE magic (0x${magic.toString(16)})`;
  const alloc = u32(rec, 0x1c), inUse = u32(rec, 0x18), attrs = u16(rec, 0x14);
  if (alloc !== rs) return `Record ${mftNo} has corrupt allocation size (${rs} <> ${alloc})`;
  if (inUse > rs) return `Record ${mftNo} has corrupt in-use size (${inUse} > ${rs})`;
  if (attrs & 7) return `Attributes badly aligned in record ${mftNo}`;
  if (attrs > rs) return `Record ${mftNo} is corrupt`;
  let offset = attrs;
  let space = inUse - offset;
  let previous: number = AttrType.STANDARD_INFORMATION;
  while (space >= 24 && offset + 8 <= rs) {
    const type = u32(rec, offset);
    if (type === AttrType.END || type < previous) break;
    const len = u32(rec, offset + 4);
    if (len > space || (len & 7) || len === 0) return `Corrupted MFT record ${mftNo}`;
    const bad = attributeInconsistency(rec, offset, mftNo);
    if (bad) return bad;
    previous = type;
    offset += len;
    space -= len;
  }
  if (space < 4 || offset + 4 > rs || u32(rec, offset) !== AttrType.END) {
    return `Bad end of MFT record ${mftNo}`;
  }
  return undefined;
}

/** ntfs_attr_inconsistent: the per-attribute checks of libntfs's full record check. */
function attributeInconsistency(rec: Uint8Array, a: number, n: number): string | undefined {
  const type = u32(rec, a), len = u32(rec, a + 4), nonRes = u8(rec, a + 8);
  const nameLen = u8(rec, a + 9), nameOff = u16(rec, a + 10);
  const nameBad = nameLen !== 0 && nameOff + 2 * nameLen > len;
  const hex = type.toString(16);
  let valueLength = 0, v = 0;
  if (nonRes) {
    const lowest = BigInt(u32(rec, a + 16)) | (BigInt(u32(rec, a + 20)) << 32n);
    const highest = BigInt(u32(rec, a + 24)) | (BigInt(u32(rec, a + 28)) << 32n);
    if (nonRes !== 1 || len < 64 || u16(rec, a + 32) >= len || nameBad || highest < lowest) {
      return `Corrupt non resident attribute 0x${hex} in MFT record ${n}`;
    }
  } else {
    valueLength = u32(rec, a + 16);
    v = a + u16(rec, a + 20);
    if (
      len < 24 || (valueLength & 0xff000000) !== 0 ||
      (valueLength !== 0 && u16(rec, a + 20) + valueLength > len) || nameBad
    ) return `Corrupt resident attribute 0x${hex} in MFT record ${n}`;
  }
  const at = (o: number, f: (x: number) => number) => (v + o + 4 <= rec.length ? f(v + o) : 0);
  switch (type) {
    case AttrType.FILE_NAME: {
      const fnLen = nonRes || valueLength < 66 ? 0 : u8(rec, v + 64);
      if (nonRes || valueLength < 66 || !fnLen || fnLen * 2 + 66 > valueLength) {
        return `Corrupt file name attribute in MFT record ${n}.`;
      }
      break;
    }
    case AttrType.INDEX_ROOT: {
      const r32 = (o: number) => at(o, (x) => u32(rec, x));
      const eo = r32(16), il = r32(20), as = r32(24);
      if (nonRes || valueLength < 29 || eo < 16 || il < eo || as < il || valueLength < as + 13) {
        return `Corrupt index root in MFT record ${n}.`;
      }
      break;
    }
    case AttrType.STANDARD_INFORMATION:
      if (nonRes || valueLength < 48) return `Corrupt standard information in MFT record ${n}`;
      break;
    case AttrType.OBJECT_ID:
      if (nonRes || valueLength < 16) return `Corrupt object id in MFT record ${n}`;
      break;
    case AttrType.VOLUME_NAME:
    case AttrType.EA_INFORMATION:
      if (nonRes) return `Attribute 0x${hex} in MFT record ${n} should be resident.`;
      break;
    case AttrType.VOLUME_INFORMATION:
      if (nonRes || valueLength < 12) return `Corrupt volume information in MFT record ${n}`;
      break;
    case AttrType.INDEX_ALLOCATION:
      if (!nonRes) return `Corrupt index allocation in MFT record ${n}`;
      break;
  }
  return undefined;
}

function decodeName(rec: Uint8Array, off: number, chars: number): string {
  let s = "";
  for (let i = 0; i < chars; i++) s += String.fromCharCode(u16(rec, off + 2 * i));
  return s;
}

/**
 * Lists the attribute records of an MFT record in physical order, validating every header
 * against the record bounds and decoding non-resident runlists. `base` is the record's
 * absolute byte offset, for messages. With `lenient`, the list ends (as libntfs's attribute
 * walk does) before the first malformed attribute record and resident values are kept inside
 * their attribute; runlist errors still throw.
 */
export function parseAttributes(
  rec: Uint8Array,
  header: MftRecordHeader,
  base = 0,
  options: {
    lenient?: boolean;
    onTruncated?: (error: CorruptImageError) => void;
    /** The cluster size, to check a base extent's runlist against its allocated_size. */
    clusterSize?: number;
  } = {},
): NtfsAttribute[] {
  const cs = options.clusterSize ?? 0;
  if (!options.lenient) return parseAttributesStrict(rec, header, base, false, cs);
  // libntfs's enumeration (ntfs_attr_find with AT_UNUSED): an attribute is taken while it fits
  // in bytes_in_use with at least a resident header; a zero length or one that does not fit
  // (other than the end marker) stops the walk with EIO. Nothing else is checked.
  const out: NtfsAttribute[] = [];
  const inUse = header.bytesInUse;
  let p = header.attrsOffset;
  const onTruncated = options.onTruncated;
  for (let guard = 0; guard <= rec.length; guard++) {
    if (p + 8 > rec.length) {
      return truncatedAt(out, base, p, "attribute header runs past the record", onTruncated);
    }
    const space = inUse - p;
    const type = u32(rec, p), length = u32(rec, p + 4);
    if ((space < 24 || space < length) && !(space >= 4 && type === AttrType.END)) {
      return truncatedAt(
        out,
        base,
        p,
        `attribute of ${length} bytes does not fit in bytes_in_use`,
        onTruncated,
      );
    }
    if (type === AttrType.END) return out;
    if (length === 0) return truncatedAt(out, base, p, "attribute length is zero", onTruncated);
    if (p + Math.max(length, 24) > rec.length) {
      return truncatedAt(out, base, p, `attribute length ${length} is invalid`, onTruncated);
    }
    out.push(parseAttributeAt(rec, p, type, length, base, true, cs));
    p += length;
  }
  return truncatedAt(out, base, p, "too many attributes", onTruncated);
}

/** Ends a lenient attribute list early: reports where and why, returns what was parsed. */
function truncatedAt(
  out: NtfsAttribute[],
  base: number,
  at: number,
  why: string,
  onTruncated: ((error: CorruptImageError) => void) | undefined,
): NtfsAttribute[] {
  onTruncated?.(
    new CorruptImageError(
      `Cannot read NTFS MFT record: ${why} (byte 0x${(base + at).toString(16)})`,
      {
        format: "ntfs",
        structure: "MFT record",
        offset: base + at,
      },
    ),
  );
  return out;
}

function parseAttributesStrict(
  rec: Uint8Array,
  header: MftRecordHeader,
  base: number,
  lenient: boolean,
  clusterSize: number,
): NtfsAttribute[] {
  const out: NtfsAttribute[] = [];
  const limit = Math.min(header.bytesInUse, rec.length);
  let p = header.attrsOffset;
  for (let guard = 0; guard < rec.length / 16; guard++) {
    if (p + 4 > limit) corrupt("attribute list runs past bytes_in_use", base, p, "type");
    const type = u32(rec, p);
    if (type === AttrType.END) return out;
    if (p + 16 > limit) corrupt("attribute header runs past bytes_in_use", base, p, "length");
    const length = u32(rec, p + 4);
    if (length < 24 || length % 8 !== 0 || p + length > limit) {
      corrupt(`attribute length ${length} is invalid`, base, p + 4, "length");
    }
    out.push(parseAttributeAt(rec, p, type, length, base, lenient, clusterSize));
    p += length;
  }
  return corrupt("too many attributes", base, p, "type");
}

/** Parses the attribute record at `p` (its type and length already checked by the caller). */
function parseAttributeAt(
  rec: Uint8Array,
  p: number,
  type: number,
  length: number,
  base: number,
  lenient: boolean,
  clusterSize: number,
): NtfsAttribute {
  const nonResident = u8(rec, p + 8) !== 0;
  const nameLength = u8(rec, p + 9), nameOffset = u16(rec, p + 10);
  const nameFits = !nameLength || nameOffset + 2 * nameLength <= length;
  if (!nameFits && !lenient) {
    corrupt("attribute name runs past the attribute", base, p + 10, "name_offset");
  }
  const a: NtfsAttribute = {
    type,
    offset: p,
    length,
    nonResident,
    name: nameLength && nameFits ? decodeName(rec, p + nameOffset, nameLength) : "",
    flags: u16(rec, p + 12),
    instance: u16(rec, p + 14),
    valueOffset: 0,
    valueLength: 0,
    lowestVcn: 0,
    highestVcn: 0,
    allocatedSize: 0,
    dataSize: 0,
    initializedSize: 0,
    compressionUnit: 0,
    runs: [],
  };
  if (!nameFits) a.nameInvalid = true;
  if (!nonResident) {
    a.valueLength = u32(rec, p + 16);
    const vo = u16(rec, p + 20);
    if (vo + a.valueLength > length) {
      // libntfs's attribute walk does not check resident values (ntfsclone then wipes past
      // the attribute): keep them inside the record.
      if (!lenient) {
        corrupt("resident value runs past the attribute", base, p + 16, "value_length");
      }
      a.declaredValueLength = a.valueLength;
      a.valueLength = Math.max(0, Math.min(a.valueLength, rec.length - p - vo));
    }
    a.valueOffset = Math.min(p + vo, rec.length);
  } else {
    // What libntfs would read as value_length if it took this for a resident attribute.
    a.declaredValueLength = u32(rec, p + 16);
    if (length < 64) {
      const why = `non-resident attribute length ${length} is too short`;
      if (!lenient) corrupt(why, base, p + 4, "length");
      try {
        corrupt(why, base, p + 4, "length", "runlist");
      } catch (e) {
        a.runlistError = e as CorruptImageError;
      }
      return a;
    }
    if (!lenient) decodeNonResident(a, rec, p, base, lenient, clusterSize);
    else {
      // The walk decodes a runlist only when it uses the attribute, as libntfs does.
      try {
        decodeNonResident(a, rec, p, base, lenient, clusterSize);
      } catch (e) {
        if (!(e instanceof CorruptImageError) || e.details.structure !== "runlist") throw e;
        a.runs = [];
        a.runlistError = e;
      }
    }
  }
  return a;
}

/**
 * A u64 field of a non-resident attribute header past 2^53: the runlist error libntfs reports
 * when it decodes the runlist.
 */
function u64TooLarge(rec: Uint8Array, off: number, type: number, base: number): never {
  const what = `attribute 0x${type.toString(16)}`;
  try {
    u64(rec, off, what);
  } catch (e) {
    if (!(e instanceof CorruptImageError)) throw e;
    corrupt(e.message.replace(/^Cannot read [^:]*: /, ""), base, off, what, "runlist");
  }
  throw new Error("unreachable: the u64 field fits");
}

/** A u64 size field, clamped to 2^53 - 1 (sizes do not enter the runlist decoding). */
function sizeField(rec: Uint8Array, off: number): number {
  const lo = u32(rec, off), hi = u32(rec, off + 4);
  return hi > 0x1fffff ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
}

/**
 * Fills the non-resident fields of `a` (an attribute record at `p`, at least 64 bytes long,
 * inside `rec`) and decodes its runlist. Throws {@linkcode CorruptImageError} with structure
 * "runlist" (or "MFT record" for a bad mapping_pairs_offset in strict mode).
 */
function decodeNonResident(
  a: NtfsAttribute,
  rec: Uint8Array,
  p: number,
  base: number,
  lenient: boolean,
  clusterSize: number,
): void {
  const type = a.type, length = a.length;
  // Out-of-range sizes or VCNs surface, as in libntfs, when the runlist is decoded.
  const lvHi = u32(rec, p + 20);
  a.lowestVcn = lvHi > 0x1fffff
    ? u64TooLarge(rec, p + 16, type, base)
    : lvHi * 0x100000000 + u32(rec, p + 16);
  // highest_vcn is signed: the exact value (rounded to a double past 2^53).
  a.highestVcn = i32(rec, p + 28) * 0x100000000 + u32(rec, p + 24);
  const mp = u16(rec, p + 32);
  a.compressionUnit = u8(rec, p + 34);
  // Sizes do not enter the runlist decoding: hostile values are clamped, not fatal.
  a.allocatedSize = sizeField(rec, p + 40);
  a.dataSize = sizeField(rec, p + 48);
  a.initializedSize = sizeField(rec, p + 56);
  // libntfs decodes from wherever mapping_pairs_offset points inside the attribute.
  if (mp > length || (!lenient && mp < 64)) {
    corrupt(
      `mapping_pairs_offset ${mp} is invalid`,
      base,
      p + 32,
      "mapping_pairs_offset",
      "runlist",
    );
  }
  a.runs = decodeRunlist(rec, p + mp, p + length, a.lowestVcn, base);
  const last = a.runs[a.runs.length - 1];
  const endVcn = last ? last.vcn + last.length : a.lowestVcn;
  if (a.highestVcn !== 0 && endVcn - 1 !== a.highestVcn) {
    corrupt(
      `highest_vcn ${a.highestVcn} does not match the runlist end ${endVcn - 1}`,
      base,
      p + 24,
      "highest_vcn",
      "runlist",
    );
  }
  if (a.lowestVcn === 0 && clusterSize) {
    const clusters = Math.ceil(a.allocatedSize / clusterSize);
    if (endVcn > clusters) {
      throw new CorruptImageError(
        `Cannot read NTFS runlist: it maps ${endVcn} clusters, allocated_size only ${clusters} (byte 0x${
          (base + p + 40).toString(16)
        })`,
        {
          format: "ntfs",
          structure: "runlist",
          field: "allocated_size",
          offset: base + p + 40,
          compat: `Corrupt attribute. vcn = 0x${endVcn.toString(16)}, num_clusters = 0x${
            clusters.toString(16)
          }`,
        },
      );
    }
  }
}

/** The resident value of an attribute (a view into `rec`). */
export function residentValue(rec: Uint8Array, a: NtfsAttribute): Uint8Array {
  return rec.subarray(a.valueOffset, a.valueOffset + a.valueLength);
}

/** An entry of an $ATTRIBUTE_LIST. */
export interface AttrListEntry {
  /** Attribute type (0x00). */
  type: number;
  /** Name (decoded), "" when unnamed. */
  name: string;
  /** lowest_vcn (0x08). */
  lowestVcn: number;
  /** The MFT record holding the attribute (0x10, record number only). */
  record: number;
  /** instance (0x18). */
  instance: number;
}

/**
 * Parses the value of an $ATTRIBUTE_LIST attribute. `base` is an absolute offset for messages.
 */
export function parseAttributeList(v: Uint8Array, base = 0): AttrListEntry[] {
  const out: AttrListEntry[] = [];
  let p = 0;
  while (p + 26 <= v.length) {
    const type = u32(v, p);
    const len = u16(v, p + 4);
    if (len < 26 || len % 8 !== 0 || p + len > v.length) {
      throw new CorruptImageError(
        `Cannot read NTFS attribute list: entry length ${len} is invalid (byte 0x${
          (base + p + 4).toString(16)
        })`,
        { format: "ntfs", structure: "attribute list", field: "length", offset: base + p + 4 },
      );
    }
    const nameLen = u8(v, p + 6), nameOff = u8(v, p + 7);
    if (nameLen && nameOff + 2 * nameLen > len) {
      throw new CorruptImageError(
        `Cannot read NTFS attribute list: name runs past the entry (byte 0x${
          (base + p + 7).toString(16)
        })`,
        { format: "ntfs", structure: "attribute list", field: "name_offset", offset: base + p + 7 },
      );
    }
    out.push({
      type,
      name: nameLen ? decodeName(v, p + nameOff, nameLen) : "",
      lowestVcn: u64(v, p + 8, "attribute list lowest_vcn"),
      record: u32(v, p + 16) + u16(v, p + 20) * 0x100000000,
      instance: u16(v, p + 24),
    });
    p += len;
  }
  return out;
}
