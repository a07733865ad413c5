// How tandem starts its backing servers: one definition each, shared by `tandem up`
// (ensure-services.ts) and the tests' private servers (testing/).

export interface ServerCommand {
  name: 'nats' | 'redis';
  /** The executable, as Debian's package installs it. */
  binary: string;
  /** URL scheme clients connect with. */
  scheme: 'nats' | 'redis';
  /** Command-line arguments for a server on 127.0.0.1:port keeping its files in dataDir. */
  args: (port: number, dataDir: string) => string[];
}

/** nats-server with JetStream. */
export const natsServerCommand: ServerCommand = {
  name: 'nats',
  binary: 'nats-server',
  scheme: 'nats',
  args: (port, dataDir) => ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dataDir],
};

/** redis-server that keeps nothing on disk. */
export const redisServerCommand: ServerCommand = {
  name: 'redis',
  binary: 'redis-server',
  scheme: 'redis',
  args: (port, dataDir) => [
    ...['--port', String(port), '--bind', '127.0.0.1'],
    ...['--save', '', '--appendonly', 'no', '--dir', dataDir],
  ],
};
