/** One codec run, measured from outside by bench/codec.ts: `codec-run.js CODEC compress|decompress IN OUT LEVEL`. */
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { lzmaNativeCodec, spawnXzCodec } from "../src/io/xz.js";

const [codecName, op, input, output, level] = process.argv.slice(2);
const codec = codecName === "xz" ? spawnXzCodec : lzmaNativeCodec;
const stream = op === "compress" ? codec.compress({ level: Number(level), threads: 0 }) : codec.decompress();
await pipeline(createReadStream(input), stream, createWriteStream(output));
