// Checks events against the payload schemas of an AsyncAPI document: reads JSON lines
// {"type": "healthsignals.v1.X", "data": {...}, "expect": "valid" | "invalid", "what": "..."} and validates each
// `data` with the JSON schema components/schemas/<type> (Ajv, the validator @asyncapi/parser itself depends
// on), and a valid one also with the objects closed to the listed property names. Prints every unexpected
// verdict; exits 1 when there is one, or when a message type of the document
// was never exercised by a valid event.
//   usage: node asyncapi_payloads.js PARSER_DIR DOCUMENT EVENTS.ndjson
'use strict';
const fs = require('fs');
const path = require('path');

const [parserDir, document, eventsFile] = process.argv.slice(2);
if (!parserDir || !document || !eventsFile) {
  console.error('usage: node asyncapi_payloads.js PARSER_DIR DOCUMENT EVENTS.ndjson');
  process.exit(2);
}
const Ajv = require(path.join(parserDir, 'node_modules', 'ajv')).default;
const doc = JSON.parse(fs.readFileSync(document, 'utf8'));
// The document is the root the schemas' "#/components/schemas/..." references resolve against. Formats such
// as int64 are documentation (the patterns check the text), and x-protobuf-* are extensions, not keywords.
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true, validateSchema: false });
ajv.addSchema(doc, 'asyncapi');
// The schemas leave objects open, so that a reader with this document accepts fields added later. A closed
// copy checks the property names too: every valid event must use only the JSON names the document lists, or
// the proto names (x-protobuf-field), which the mapping's parsers also accept.
const closed = JSON.parse(JSON.stringify(doc));
for (const schema of Object.values(closed.components.schemas)) {
  if (!schema.properties) continue;
  for (const property of Object.values(schema.properties)) {
    const proto = property['x-protobuf-field'];
    if (proto && !(proto.name in schema.properties)) schema.properties[proto.name] = property;
  }
  schema.additionalProperties = false;
}
ajv.addSchema(closed, 'closed');

const used = new Map();
let problems = 0;
const lines = fs.readFileSync(eventsFile, 'utf8').split('\n').filter((l) => l.trim());
for (const [i, line] of lines.entries()) {
  const event = JSON.parse(line);
  const validate = ajv.getSchema(`asyncapi#/components/schemas/${event.type}`);
  if (!validate) {
    console.log(`${eventsFile}:${i + 1}: no schema for type ${event.type}`);
    problems++;
    continue;
  }
  let valid = validate(event.data);
  let errors = validate.errors;
  if (valid && event.expect === 'valid') {
    const strict = ajv.getSchema(`closed#/components/schemas/${event.type}`);
    valid = strict(event.data);
    errors = strict.errors;
  }
  if (valid && event.expect === 'valid') used.set(event.type, (used.get(event.type) || 0) + 1);
  if (valid !== (event.expect === 'valid')) {
    problems++;
    console.log(`${eventsFile}:${i + 1}: ${event.what}: expected ${event.expect}, ` +
      `got ${valid ? 'valid' : ajv.errorsText(errors)}`);
  }
}
const types = Object.values(doc.components.messages).map((m) => m['x-protobuf-type']).filter(Boolean);
for (const type of types) {
  if (!used.get(type)) {
    console.log(`asyncapi payloads: no valid event of ${type} was checked`);
    problems++;
  }
}
const summary = [...used.entries()].map(([t, n]) => `${t.replace('healthsignals.v1.', '')} ${n}`).join(', ');
if (problems) {
  console.log(`asyncapi payloads: ${problems} problem(s)`);
  process.exit(1);
}
console.log(`asyncapi payloads: ${lines.length} events as expected (valid: ${summary})`);
