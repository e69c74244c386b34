// Redaction for the support bundle: no passwords, keys or tokens leave the appliance.
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|PASSPHRASE|CREDENTIAL/i;

/** An env/conf file with the values of secret-looking variables replaced. */
export function redactEnvText(text: string): string {
  return text
    .split('\n')
    .map((l) => {
      const m = /^(\s*(?:export\s+)?)([A-Za-z_][\w.]*)(\s*=\s*)(.*)$/.exec(l);
      return m && SECRET_NAME.test(m[2]!) && m[4] !== '' ? `${m[1]}${m[2]}${m[3]}<redacted>` : l;
    })
    .join('\n');
}

/** The secret values defined in env/conf texts (to scrub them from logs too). */
export function secretValues(...texts: string[]): string[] {
  const out = new Set<string>();
  for (const t of texts) {
    for (const l of t.split('\n')) {
      const m = /^\s*(?:export\s+)?([A-Za-z_][\w.]*)\s*=\s*(.*)$/.exec(l);
      if (!m || !SECRET_NAME.test(m[1]!)) continue;
      let v = m[2]!.trim();
      if (/^'.*'$/.test(v)) v = v.slice(1, -1);
      else if (/^".*"$/.test(v)) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
      if (v.length >= 4) out.add(v);
    }
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** Text with every occurrence of the given secrets and of PEM private keys replaced. */
export function scrub(text: string, secrets: string[]): string {
  let out = text.replace(/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g, '<private key redacted>');
  for (const s of secrets) out = out.split(s).join('<redacted>');
  return out;
}
