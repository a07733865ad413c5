// Several processes' Prometheus text expositions as one: each metric family once (its # HELP and
// # TYPE from the first process that has it), followed by every process's samples of it. The
// processes label their series apart (router_process), so no two samples collide.

/** The family a sample line belongs to: its name less a histogram's or summary's suffix. */
function familyOf(line: string, current: string | null): string {
  const end = line.search(/[{ ]/);
  const name = end === -1 ? line : line.slice(0, end);
  if (current !== null && name.startsWith(current)) return current;
  return name;
}

export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, { header: string[]; samples: string[] }>();
  const familyNamed = (name: string) => {
    let family = families.get(name);
    if (family === undefined) {
      family = { header: [], samples: [] };
      families.set(name, family);
    }
    return family;
  };
  for (const text of texts) {
    let current: string | null = null;
    for (const line of text.split('\n')) {
      if (line.length === 0) continue;
      if (line.startsWith('# ')) {
        const [, kind, name] = line.split(' ', 3);
        if (name === undefined || (kind !== 'HELP' && kind !== 'TYPE')) continue;
        current = name;
        const family = familyNamed(name);
        // Every process repeats the header: keep the first.
        if (!family.header.some((h) => h.startsWith(`# ${kind} `))) family.header.push(line);
        continue;
      }
      familyNamed(familyOf(line, current)).samples.push(line);
    }
  }
  let out = '';
  for (const { header, samples } of families.values()) {
    for (const line of header) out += `${line}\n`;
    for (const line of samples) out += `${line}\n`;
  }
  return out;
}
