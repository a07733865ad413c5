// Test helpers: real NATS and Redis servers on free ports, port waiting. Import from
// '@tandem/common/testing' (kept out of the main entry so services never load it).
export { ChildServer, type ChildServerSpec } from '../child-server.ts';
export { canConnect, freePort, waitForPort } from '../ports.ts';
export * from './fixtures.ts';
export { startNatsServer, type TestNatsServer } from './nats-server.ts';
export { startRedisServer, type TestRedisServer } from './redis-server.ts';
export { startTestServer, type TestServer } from './test-server.ts';
