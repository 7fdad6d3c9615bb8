// gen-zod.mjs — how tests/schemas/zod-*.json, openai-*.json and aisdk-*.json were made.
// Run outside the repo:  mkdir /tmp/zodgen && cd /tmp/zodgen && npm init -y && npm i zod@4 openai
//                        node /path/to/gen-zod.mjs /path/to/tests/schemas
// zod-*:    z.toJSONSchema(schema) (draft 2020-12, zod's default).
// aisdk-*:  z.toJSONSchema(schema, { target: "draft-7" }), the shape the AI SDK sends as tool parameters.
// openai-*: zodResponseFormat(schema, name).json_schema.schema from the openai SDK (strict mode:
//           additionalProperties false, every property required, optional/nullable as anyOf with null).
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(process.cwd() + "/");
const { z } = require("zod");
const out = process.argv[2] || ".";

const Address = z.object({ street: z.string(), city: z.string(), zip: z.string().regex(/^[0-9]{5}$/) });
const Category = z.lazy(() => z.object({ name: z.string(), children: z.array(Category) }));
const Tree = z.lazy(() => z.object({ value: z.number(), left: Tree.optional(), right: Tree.optional() }));
const Json = z.lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(Json), z.record(z.string(), Json)]));

const schemas = {
  weather: z.object({ location: z.string().describe("City name"), unit: z.enum(["celsius", "fahrenheit"]).optional() }),
  user: z.object({ id: z.uuid(), email: z.email(), name: z.string().min(1).max(40), age: z.number().int().min(0).max(150) }),
  nested: z.object({ user: z.object({ name: z.string(), address: Address }), tags: z.array(z.string()).max(5) }),
  nullable: z.object({ nickname: z.string().nullable(), bio: z.string().optional(), score: z.number().nullable().optional() }),
  union: z.object({ value: z.union([z.string(), z.number(), z.boolean()]) }),
  discriminated: z.object({
    shape: z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("circle"), radius: z.number().positive() }),
      z.object({ kind: z.literal("square"), side: z.number().positive() }),
      z.object({ kind: z.literal("rect"), w: z.number().min(1), h: z.number().min(1) }),
    ]),
  }),
  arrays: z.object({ ids: z.array(z.number().int()).min(1).max(3), names: z.array(z.string()).length(2) }),
  formats: z.object({ site: z.url(), at: z.iso.datetime(), day: z.iso.date(), t: z.iso.time(), ip: z.ipv4() }),
  record: z.object({ scores: z.record(z.string(), z.number()) }),
  category: Category,
  tree: Tree,
  json: z.object({ data: Json }),
  literals: z.object({ version: z.literal(2), mode: z.literal("fast"), on: z.literal(true) }),
  tuple: z.object({ point: z.tuple([z.number(), z.number()]), pair: z.tuple([z.string(), z.boolean()]) }),
  strict: z.strictObject({ q: z.string(), limit: z.number().int().positive().max(100).default(10) }),
  search: z.object({
    query: z.string().min(3),
    filters: z.object({ from: z.iso.date().optional(), to: z.iso.date().optional(), lang: z.enum(["en", "de", "fr"]).optional() }).optional(),
    page: z.number().int().nonnegative().optional(),
  }),
  order: z.object({
    orderId: z.string().regex(/^ORD-[0-9]{6}$/),
    items: z.array(z.object({ sku: z.string(), qty: z.number().int().min(1), price: z.number().multipleOf(0.01) })).min(1),
    status: z.enum(["pending", "paid", "shipped"]),
    note: z.string().max(200).nullish(),
  }),
  calendar: z.object({ title: z.string(), start: z.iso.datetime(), attendees: z.array(z.email()).max(4), allDay: z.boolean() }),
  numbers: z.object({ pct: z.number().gte(0).lte(1), temp: z.number().gt(-50).lt(60), step: z.number().int().multipleOf(5) }),
  intersection: z.intersection(z.object({ a: z.string() }), z.object({ b: z.number() })),
  set: z.object({ colors: z.array(z.enum(["red", "green", "blue"])).min(1).max(3) }),
  emoji: z.object({ text: z.string().min(2).max(8), slug: z.string().regex(/^[a-z][a-z0-9-]{2,15}$/) }),
};

const norm = (s) => JSON.stringify(s, null, 2) + "\n";
for (const [name, s] of Object.entries(schemas)) {
  writeFileSync(`${out}/zod-${name}.json`, norm(z.toJSONSchema(s, { unrepresentable: "any" })));
}
for (const name of ["weather", "user", "nested", "search", "order", "calendar", "tuple", "tree"]) {
  writeFileSync(`${out}/aisdk-${name}.json`, norm(z.toJSONSchema(schemas[name], { target: "draft-7", unrepresentable: "any" })));
}
let zrf = null;
try { zrf = require("openai/helpers/zod").zodResponseFormat; } catch (e) { console.error("openai helper:", e.message); }
if (zrf) {
  // Strict mode wants every field required: optional fields become .nullable() here.
  const strict = {
    weather: z.object({ location: z.string(), unit: z.enum(["celsius", "fahrenheit"]).nullable() }),
    user: schemas.user,
    nested: schemas.nested,
    nullable: z.object({ nickname: z.string().nullable(), bio: z.string().nullable(), score: z.number().nullable() }),
    discriminated: schemas.discriminated,
    order: z.object({
      orderId: z.string(),
      items: z.array(z.object({ sku: z.string(), qty: z.number().int(), price: z.number() })),
      status: z.enum(["pending", "paid", "shipped"]),
      note: z.string().nullable(),
    }),
    calendar: schemas.calendar,
    search: z.object({
      query: z.string(),
      filters: z.object({ from: z.string().nullable(), lang: z.enum(["en", "de", "fr"]).nullable() }).nullable(),
      page: z.number().int().nullable(),
    }),
    category: Category,
    literals: schemas.literals,
    steps: z.object({ steps: z.array(z.object({ explanation: z.string(), output: z.string() })), final_answer: z.string() }),
  };
  for (const [name, s] of Object.entries(strict)) {
    try {
      writeFileSync(`${out}/openai-${name}.json`, norm(zrf(s, name).json_schema.schema));
    } catch (e) { console.error(`openai ${name}:`, e.message); }
  }
}
