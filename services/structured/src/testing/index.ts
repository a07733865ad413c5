// For tests (this package's and the cross-service ones): the JSON Schema suite.
export { schemaSuite } from './schemas.ts';
