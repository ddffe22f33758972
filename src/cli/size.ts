/** Parses sizes like `512M`, `2G`, `65536` (QEMU's -m spelling; a bare number means MiB there, bytes here only with a `B` suffix). */
export function parseSize(text: string, defaultUnit: 'M' | 'B' = 'M'): number | null {
  const m = /^(\d+(?:\.\d+)?)([KMGT]i?B?|B)?$/i.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? defaultUnit).toUpperCase()[0]!;
  const mult = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : unit === 'T' ? 1024 ** 4 : 1;
  const v = Math.floor(n * mult);
  return Number.isFinite(v) && v > 0 ? v : null;
}
