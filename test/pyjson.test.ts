import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { compareCodePoints, dumpPyJson, type JsonValue } from "../src/format/pyjson.js";

/** Python's own bytes for a document, the oracle this writer must match. */
function python(doc: unknown): string {
  return execFileSync(
    "python3",
    [
      "-c",
      'import json,sys; d=json.loads(sys.stdin.read()); sys.stdout.write(json.dumps(d, sort_keys=True, indent=4, separators=(",", ": ")) + "\\n")',
    ],
    { input: JSON.stringify(doc), encoding: "utf8" },
  );
}

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

function randomString(r: () => number): string {
  const pools = [
    () => String.fromCharCode(0x20 + Math.floor(r() * 95)),
    () => String.fromCharCode(Math.floor(r() * 0x20)),
    () => String.fromCharCode(0x7f + Math.floor(r() * 0x100)),
    () => String.fromCharCode(0x4e00 + Math.floor(r() * 0x100)),
    () => String.fromCodePoint(0x1f600 + Math.floor(r() * 0x50)),
    () => String.fromCharCode(0xe000 + Math.floor(r() * 0x1000)),
    () => ['"', "\\", "/", "\n", "\t"][Math.floor(r() * 5)],
  ];
  let s = "";
  const len = Math.floor(r() * 8);
  for (let i = 0; i < len; i++) s += pools[Math.floor(r() * pools.length)]();
  return s;
}

function randomDoc(r: () => number, depth: number): JsonValue {
  const pick = Math.floor(r() * (depth > 3 ? 5 : 7));
  switch (pick) {
    case 0:
      return Math.floor(r() * 2 ** 40) - 2 ** 39;
    case 1:
      return randomString(r);
    case 2:
      return r() < 0.5;
    case 3:
      return null;
    case 4:
      return Math.floor(r() * 65536);
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomDoc(r, depth + 1));
    default: {
      const o: Record<string, JsonValue> = {};
      const n = Math.floor(r() * 5);
      for (let i = 0; i < n; i++) o[randomString(r)] = randomDoc(r, depth + 1);
      return o;
    }
  }
}

describe("Python-compatible JSON writer", () => {
  it("writes an index.json exactly as the reference does", () => {
    const doc = {
      images: [{ version: 1, type: "full", files: [], description: "tag=x,version=1" }],
      global: { generated_at: "Sun Nov 29 05:44:37 UTC 2026" },
    };
    expect(dumpPyJson(doc)).toBe(
      [
        "{",
        '    "global": {',
        '        "generated_at": "Sun Nov 29 05:44:37 UTC 2026"',
        "    },",
        '    "images": [',
        "        {",
        '            "description": "tag=x,version=1",',
        '            "files": [],',
        '            "type": "full",',
        '            "version": 1',
        "        }",
        "    ]",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("escapes non-ASCII, control characters and astral characters like ensure_ascii", () => {
    expect(dumpPyJson({ k: '中\u007f\u0001😀/"\\' })).toBe('{\n    "k": "\\u4e2d\\u007f\\u0001\\ud83d\\ude00/\\"\\\\"\n}\n');
    expect(dumpPyJson({ empty: {}, list: [] })).toBe('{\n    "empty": {},\n    "list": []\n}\n');
  });

  it("sorts keys by code point, not by UTF-16 unit", () => {
    const astral = String.fromCodePoint(0x1f600);
    expect(compareCodePoints(astral, "\uffff")).toBeGreaterThan(0);
    expect(["\uffff", astral, "a"].sort(compareCodePoints)).toEqual(["a", "\uffff", astral]);
  });

  it("matches python3's bytes on 300 generated documents", () => {
    const r = rng(42);
    const docs = Array.from({ length: 300 }, () => {
      const o: Record<string, JsonValue> = {};
      for (let i = 0; i < 4; i++) o[randomString(r)] = randomDoc(r, 0);
      return o;
    });
    // One python run for all documents: each compared separately below.
    const expected = JSON.parse(
      execFileSync(
        "python3",
        [
          "-c",
          'import json,sys; ds=json.loads(sys.stdin.read()); print(json.dumps([json.dumps(d, sort_keys=True, indent=4, separators=(",", ": ")) + "\\n" for d in ds]))',
        ],
        { input: JSON.stringify(docs), encoding: "utf8", maxBuffer: 64 << 20 },
      ),
    ) as string[];
    docs.forEach((d, i) => expect(dumpPyJson(d), `document ${i}`).toBe(expected[i]));
  });

  it("writes floats like Python's repr", () => {
    for (const f of [0.5, 1e-7, 123456.789, 1e16 + 0.5, -2.5e-5, 1.5e300]) {
      expect(dumpPyJson([f])).toBe(python([f]));
    }
  });
});
