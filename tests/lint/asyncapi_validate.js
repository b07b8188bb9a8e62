// Validates an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser, which runs the
// specification's JSON schema and its Spectral rule set): prints every diagnostic and exits 1 when there is
// any error or warning, 0 otherwise. Run by tests/lint/asyncapi.sh with the parser that tools/devtools
// installed.
//   usage: node asyncapi_validate.js PARSER_DIR DOCUMENT
'use strict';
const fs = require('fs');
const path = require('path');

const [parserDir, document] = process.argv.slice(2);
if (!parserDir || !document) {
  console.error('usage: node asyncapi_validate.js PARSER_DIR DOCUMENT');
  process.exit(2);
}
const { Parser, DiagnosticSeverity } = require(path.join(parserDir, 'node_modules', '@asyncapi', 'parser'));

(async () => {
  const parser = new Parser();
  const { document: parsed, diagnostics } = await parser.parse(fs.readFileSync(document, 'utf8'), {
    source: path.resolve(document),
  });
  const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning',
    [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
  let bad = 0;
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? d.path.join('.') : '(document)';
    console.log(`${document}: ${names[d.severity] || d.severity}: ${d.code}: ${where}: ${d.message}`);
    if (d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning) bad++;
  }
  if (!parsed || bad) {
    console.log(`asyncapi: ${document} is not valid (${bad} errors and warnings)`);
    process.exit(1);
  }
  console.log(`asyncapi: ${document} is valid AsyncAPI ${parsed.version()}: ` +
    `${parsed.channels().length} channels, ${parsed.operations().length} operations, ` +
    `${parsed.components().messages().length} messages`);
})().catch((e) => { console.error(e); process.exit(1); });
