// The repository and tag selectors of a project rule (tag immutability, tag retention): a decoration
// (matching / excluding) and a doublestar pattern for each.
import type { ComponentChildren } from 'preact';

export interface SelectorValues {
  repoDecoration: string;
  repoPattern: string;
  tagDecoration: string;
  tagPattern: string;
}

function Pair(props: { label: string; name: string; decorations: [string, string]; decoration: string; pattern: string; placeholder?: string; autofocus?: boolean; onChange: (decoration: string, pattern: string) => void }) {
  return (
    <div class="grid2">
      <label class="field">
        <span>{props.label}</span>
        <select name={`${props.name}_decoration`} value={props.decoration} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value, props.pattern)}>
          <option value={props.decorations[0]}>matching</option>
          <option value={props.decorations[1]}>excluding</option>
        </select>
      </label>
      <label class="field">
        <span>{props.label === 'Repositories' ? 'Repository pattern' : 'Tag pattern'}</span>
        <input name={`${props.name}_pattern`} value={props.pattern} required autofocus={props.autofocus} placeholder={props.placeholder} onInput={(e) => props.onChange(props.decoration, (e.target as HTMLInputElement).value)} />
      </label>
    </div>
  );
}

/** Repositories (matched by their name inside the project), then `between`, then tags. */
export function SelectorFields(props: { value: SelectorValues; onChange: (v: SelectorValues) => void; tagPlaceholder?: string; focusTags?: boolean; between?: ComponentChildren }) {
  const v = props.value;
  return (
    <>
      <Pair label="Repositories" name="repo" decorations={['repoMatches', 'repoExcludes']} decoration={v.repoDecoration} pattern={v.repoPattern} onChange={(d, p) => props.onChange({ ...v, repoDecoration: d, repoPattern: p })} />
      <p class="muted small">The name inside the project, e.g. app/** (** for all repositories).</p>
      {props.between}
      <Pair label="Tags" name="tag" decorations={['matches', 'excludes']} decoration={v.tagDecoration} pattern={v.tagPattern} placeholder={props.tagPlaceholder} autofocus={props.focusTags} onChange={(d, p) => props.onChange({ ...v, tagDecoration: d, tagPattern: p })} />
    </>
  );
}
