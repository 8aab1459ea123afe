// oidc-provider 9 warns on import that Node 20 is not a runtime it supports. Gatehouse runs and is
// tested on Node 20, so that one message is dropped while the server modules load; every other warning
// passes through.
export async function importQuietly<T>(load: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider WARNING: Unsupported runtime'))
      return;
    warn(...args);
  };
  try {
    return await load();
  } finally {
    console.warn = warn;
  }
}
