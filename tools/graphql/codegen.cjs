// graphql-codegen over the committed SDL and the sample operations, the way
// a front-end would run it. scripts/schema-check sets the paths; the output
// goes to a temporary directory and is never committed.
'use strict';

const schema = process.env.SCHEMA_CHECK_SDL;
const out = process.env.SCHEMA_CHECK_OUT;
if (!schema || !out) {
  throw new Error('run through scripts/schema-check (SCHEMA_CHECK_SDL and SCHEMA_CHECK_OUT unset)');
}

module.exports = {
  overwrite: true,
  schema,
  documents: 'operations/*.graphql',
  // An operation that does not match the schema, or a schema that does not
  // build, fails the run instead of generating half a file.
  noSilentErrors: true,
  config: {
    // Every custom scalar must say what a client holds: a new scalar fails
    // the check until it is named here (and in the README's API section).
    strictScalars: true,
    scalars: {
      Date: 'string',
      DateTime: 'string',
      LocalTime: 'string',
      JSON: 'unknown',
    },
    useTypeImports: true,
  },
  // Two files, as front-ends keep them: every schema type (for cache
  // policies, resolvers of local state, ...) and the operations' own types,
  // which since typescript-operations 6 declare the enums and inputs they
  // use themselves (one file with both plugins would declare them twice).
  generates: {
    [`${out}/schema.ts`]: {
      plugins: ['typescript'],
    },
    [`${out}/operations.ts`]: {
      plugins: ['typescript-operations'],
    },
  },
};
