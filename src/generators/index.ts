/** The generators (server-reference §5): the registry, generate_delta and their context. */
export { GENERATORS, generateFile } from "./registry.js";
export { generateDelta } from "./delta.js";
export { makeGeneratorContext, type Environment, type FileDigest, type Generator, type GeneratorContext } from "./types.js";
export { publishPoolFile, readSidecar, sidecarVersionDetail, type PoolSource, type PublishedFile } from "./pool.js";
