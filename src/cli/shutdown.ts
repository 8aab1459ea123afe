// Long-running commands wait here until SIGINT or SIGTERM, then close what they started.
export function onShutdown(close: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      close().then(resolve, (err: unknown) => {
        process.stderr.write(`gatehouse: error while stopping: ${String(err)}\n`);
        process.exitCode = 3;
        resolve();
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
