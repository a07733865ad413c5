// The cluster secret's call token and membership proofs, and the options they come from (the
// end-to-end behaviour is test/e2e/hardening-membership.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ServingStatus, Worker } from '@tandem/proto';
import {
  addGrpcService,
  bindGrpcServer,
  ConfigError,
  callAuthorizer,
  clusterSecurityFrom,
  clusterTokenHeader,
  createGrpcClient,
  grpc,
  grpcClientOptions,
  grpcServerCredentials,
  membershipChallenge,
  membershipProof,
  openCluster,
  shutdownGrpcServer,
  UnimplementedError,
  verifiesMembership,
  verifyMembershipProof,
} from '../src/index.ts';

const none = {
  'cluster-secret': null,
  'cluster-secret-file': null,
  'tls-cert': null,
  'tls-key': null,
  'tls-ca': null,
};

test('a membership proof holds for its challenge, worker and address only', () => {
  const secret = Buffer.from('s');
  const challenge = membershipChallenge();
  const proof = membershipProof(secret, challenge, 'w1', 'h:1');
  assert.equal(verifyMembershipProof(secret, challenge, 'w1', 'h:1', proof), true);
  assert.equal(verifyMembershipProof(secret, membershipChallenge(), 'w1', 'h:1', proof), false);
  assert.equal(verifyMembershipProof(secret, challenge, 'w2', 'h:1', proof), false);
  assert.equal(verifyMembershipProof(secret, challenge, 'w1', 'h:2', proof), false);
  assert.equal(verifyMembershipProof(Buffer.from('t'), challenge, 'w1', 'h:1', proof), false);
  assert.equal(verifyMembershipProof(secret, challenge, 'w1', 'h:1', proof.subarray(1)), false);
});

test('the call check accepts the token of the same secret only; an open cluster checks nothing', () => {
  assert.equal(callAuthorizer(openCluster), null);
  const security = clusterSecurityFrom({ ...none, 'cluster-secret': 'a' });
  const authorize = callAuthorizer(security)!;
  const metadata = new grpc.Metadata();
  assert.equal(authorize(metadata)?.code, 'unauthenticated');
  metadata.set(clusterTokenHeader, 'wrong');
  assert.equal(authorize(metadata)?.reason, 'cluster_token_invalid');
  // The token the client side sends (its interceptor sets the same header).
  assert.equal(grpcClientOptions(security).interceptors?.length, 1);
  assert.equal(grpcClientOptions(openCluster).interceptors, undefined);
  assert.equal(verifiesMembership(security), true);
  assert.equal(verifiesMembership(openCluster), false);
});

test('security options: a secret file, TLS files, and the pairs that must go together', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-sec-'));
  writeFileSync(join(dir, 'secret'), '  from-a-file\n');
  const fromFile = clusterSecurityFrom({ ...none, 'cluster-secret-file': join(dir, 'secret') });
  assert.equal(fromFile.secret?.toString(), 'from-a-file');
  writeFileSync(join(dir, 'empty'), '\n');
  assert.throws(
    () => clusterSecurityFrom({ ...none, 'cluster-secret-file': join(dir, 'empty') }),
    ConfigError,
  );
  assert.throws(() => clusterSecurityFrom({ ...none, 'tls-cert': join(dir, 'secret') }), /go together/);
  assert.throws(() => clusterSecurityFrom({ ...none, 'tls-ca': join(dir, 'missing.pem') }), /cannot read/);
  const caOnly = clusterSecurityFrom({ ...none, 'tls-ca': join(dir, 'secret') });
  assert.equal(caOnly.tls?.cert, null);
});

test('TLS: clients check --tls-server-name in the certificate instead of the host they dial', async (t) => {
  // The fixture certificate is for 127.0.0.1 and localhost; the client dials 127.0.0.1 each time.
  const tlsDir = join(
    fileURLToPath(new URL('.', import.meta.url)),
    '..',
    '..',
    '..',
    'test',
    'fixtures',
    'tls',
  );
  const member = {
    ...none,
    'tls-cert': join(tlsDir, 'member.pem'),
    'tls-key': join(tlsDir, 'member.key'),
    'tls-ca': join(tlsDir, 'ca.pem'),
  };
  const server = new grpc.Server();
  const unused = (): never => {
    throw new UnimplementedError('not in this test');
  };
  addGrpcService(server, Worker, {
    health: async () => ({ status: ServingStatus.SERVING, workerId: 'w' }),
    info: unused,
    cancel: unused,
    generate: unused,
    dumpBlocks: unused,
  });
  const port = await bindGrpcServer(
    server,
    '127.0.0.1',
    0,
    grpcServerCredentials(clusterSecurityFrom(member)),
  );
  t.after(() => shutdownGrpcServer(server, 1000));
  const healthVia = async (serverName: string | null): Promise<ServingStatus> => {
    const security = clusterSecurityFrom({ ...member, 'tls-server-name': serverName });
    assert.equal(security.tls?.serverName, serverName);
    const client = createGrpcClient(Worker, `127.0.0.1:${port}`, grpcClientOptions(security));
    try {
      return (await client.health({}, { timeoutMs: 3000 })).status;
    } finally {
      client.close();
    }
  };
  assert.equal(await healthVia(null), ServingStatus.SERVING);
  assert.equal(await healthVia('localhost'), ServingStatus.SERVING);
  // A name the certificate does not carry fails although the dialed address is in it.
  await assert.rejects(healthVia('tandem-cluster.llm.svc'), /unavailable|certificate|altnames/i);
});
