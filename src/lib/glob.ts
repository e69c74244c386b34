// Harbor's doublestar patterns (replication filters, immutable tag rules, tag retention selectors): `*` any run of characters but "/", `**` any run including "/"
// (`a/**/b` also matches "a/b"), `?` one character but "/", `{a,b}` alternatives (nested too),
// `[...]` classes (`[!...]` negated), `\x` the character x itself.
//
// Matched as a small automaton, not a backtracking RegExp: names come from pushes and from other
// registries, and a pattern such as `**a**a**a**b` makes a RegExp take exponential time on a long
// name (one push would stall every request of the node). Here a match costs at most the name's
// length times the pattern's, whatever the pattern.

type GlobState = { kind: 'test'; test: (c: string) => boolean; out: number } | { kind: 'split'; outs: number[] } | { kind: 'match' };
type GlobItem = { kind: 'test'; test: (c: string) => boolean } | { kind: 'star'; slash: boolean } | { kind: 'globstarDir' } | { kind: 'group'; alternatives: GlobItem[][] };

const anyChar = () => true;
const notSlash = (c: string) => c !== '/';

/** The pattern as a sequence of items (alternatives nested); throws on an unbalanced `{` or a bad class. */
function parseGlob(pattern: string): GlobItem[] {
  const root: GlobItem[][] = [[]];
  const stack: GlobItem[][][] = [root];
  const seq = () => {
    const alts = stack[stack.length - 1];
    return alts[alts.length - 1];
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          seq().push({ kind: 'globstarDir' });
        } else seq().push({ kind: 'star', slash: true });
      } else seq().push({ kind: 'star', slash: false });
    } else if (c === '?') seq().push({ kind: 'test', test: notSlash });
    else if (c === '{') {
      const alternatives: GlobItem[][] = [[]];
      seq().push({ kind: 'group', alternatives });
      stack.push(alternatives);
    } else if (c === '}' && stack.length > 1) stack.pop();
    else if (c === ',' && stack.length > 1) stack[stack.length - 1].push([]);
    else if (c === '[' && pattern.indexOf(']', i + 2) >= 0) {
      const end = pattern.indexOf(']', i + 2);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      // One character against one class: no backtracking possible.
      const cls = new RegExp('^[' + body.replace(/[\\\]]/g, '\\$&') + ']$');
      seq().push({ kind: 'test', test: (x) => cls.test(x) });
      i = end;
    } else {
      const lit = c === '\\' && i + 1 < pattern.length ? pattern[++i] : c;
      seq().push({ kind: 'test', test: (x) => x === lit });
    }
  }
  if (stack.length > 1) throw new Error('unbalanced {');
  return root[0];
}

/** A matcher of the whole string against a doublestar pattern (throws when the pattern is malformed). */
export function globMatcher(pattern: string): (s: string) => boolean {
  const states: GlobState[] = [{ kind: 'match' }];
  const add = (st: GlobState) => states.push(st) - 1;
  /** The start state of `items` followed by state `next` (built back to front). */
  const build = (items: GlobItem[], next: number): number => {
    for (let k = items.length - 1; k >= 0; k--) {
      const it = items[k];
      if (it.kind === 'test') next = add({ kind: 'test', test: it.test, out: next });
      else if (it.kind === 'star') {
        const loop = add({ kind: 'split', outs: [] });
        (states[loop] as { outs: number[] }).outs.push(add({ kind: 'test', test: it.slash ? anyChar : notSlash, out: loop }), next);
        next = loop;
      } else if (it.kind === 'globstarDir') {
        // (?:.*/)? : nothing, or anything ending in "/".
        const slash = add({ kind: 'test', test: (c) => c === '/', out: next });
        const loop = add({ kind: 'split', outs: [] });
        (states[loop] as { outs: number[] }).outs.push(add({ kind: 'test', test: anyChar, out: loop }), slash);
        next = add({ kind: 'split', outs: [loop, next] });
      } else {
        const target = next;
        next = add({ kind: 'split', outs: it.alternatives.map((alt) => build(alt, target)) });
      }
    }
    return next;
  };
  const start = build(parseGlob(pattern), 0);
  /** The test states and the match state reachable from `from` without reading a character. */
  const closure = (from: number[]): Set<number> => {
    const out = new Set<number>();
    const seen = new Set<number>();
    const todo = [...from];
    while (todo.length) {
      const i = todo.pop()!;
      if (seen.has(i)) continue;
      seen.add(i);
      const st = states[i];
      if (st.kind === 'split') todo.push(...st.outs);
      else out.add(i);
    }
    return out;
  };
  const first = closure([start]);
  return (s) => {
    let current = first;
    for (const c of s) {
      const next: number[] = [];
      for (const i of current) {
        const st = states[i];
        if (st.kind === 'test' && st.test(c)) next.push(st.out);
      }
      if (!next.length) return false;
      current = closure(next);
    }
    return current.has(0);
  };
}
