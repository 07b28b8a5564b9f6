export type { TarEntry, TarEntryType, TarHeader } from "./types.js";
export { TYPEFLAG } from "./types.js";
export { readTar } from "./read.js";
export { GnuTarWriter, encodeGnuHeader } from "./write.js";
