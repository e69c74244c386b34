// Search as you type: a text input with a listbox of suggestions (WAI-ARIA combobox pattern:
// arrows move, Enter picks, Escape closes; the typed text is kept if nothing is picked).
import { useEffect, useState } from 'preact/hooks';
import { useDebounced } from '../lib/hooks.ts';

export interface Option<T> {
  key: string;
  label: string;
  detail?: string;
  value: T;
}

let seq = 0;

export function Autocomplete<T>(props: {
  label: string;
  value: string;
  onInput: (text: string) => void;
  onPick: (o: Option<T>) => void;
  search: (q: string, signal: AbortSignal) => Promise<Option<T>[]>;
  placeholder?: string;
  help?: string;
  name?: string;
}) {
  const [id] = useState(() => `ac${++seq}`);
  const [opts, setOpts] = useState<Option<T>[]>([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const [searching, setSearching] = useState(false);
  const q = useDebounced(props.value.trim(), 200);
  const { search } = props;

  useEffect(() => {
    if (!q || !open) {
      setOpts([]);
      return;
    }
    const ctl = new AbortController();
    setSearching(true);
    search(q, ctl.signal).then(
      (o) => {
        if (ctl.signal.aborted) return;
        setOpts(o);
        setActive(o.length ? 0 : -1);
        setSearching(false);
      },
      () => !ctl.signal.aborted && (setOpts([]), setSearching(false)),
    );
    return () => ctl.abort();
  }, [q, open, search]);

  const pick = (o: Option<T>) => {
    props.onPick(o);
    setOpen(false);
  };
  const showList = open && !!q;

  return (
    <div class="field autocomplete">
      <label for={`${id}-input`}>{props.label}</label>
      <input
        id={`${id}-input`}
        name={props.name}
        type="text"
        role="combobox"
        autocomplete="off"
        aria-autocomplete="list"
        aria-expanded={showList}
        aria-controls={`${id}-list`}
        aria-activedescendant={showList && active >= 0 ? `${id}-opt-${active}` : undefined}
        aria-describedby={props.help ? `${id}-help` : undefined}
        placeholder={props.placeholder}
        value={props.value}
        onInput={(e) => {
          props.onInput((e.target as HTMLInputElement).value);
          setOpen(true);
        }}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (e.key === 'ArrowDown') {
            e.preventDefault();
            setOpen(true);
            setActive((a) => Math.min(opts.length - 1, a + 1));
          } else if (e.key === 'ArrowUp') {
            e.preventDefault();
            setActive((a) => Math.max(0, a - 1));
          } else if (e.key === 'Enter' && showList && active >= 0 && opts[active]) {
            e.preventDefault();
            pick(opts[active]);
          } else if (e.key === 'Escape' && showList) {
            e.preventDefault();
            e.stopPropagation();
            setOpen(false);
          }
        }}
      />
      {props.help && (
        <small id={`${id}-help`} class="muted">
          {props.help}
        </small>
      )}
      {showList && (
        <ul id={`${id}-list`} class="popover" role="listbox" aria-label={`${props.label} suggestions`}>
          {searching && opts.length === 0 && <li class="muted pad">Searching…</li>}
          {!searching && opts.length === 0 && <li class="muted pad">No matches</li>}
          {opts.map((o, i) => (
            <li
              key={o.key}
              id={`${id}-opt-${i}`}
              role="option"
              aria-selected={i === active}
              class={i === active ? 'active' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(o);
              }}
              onMouseEnter={() => setActive(i)}
            >
              <span>{o.label}</span>
              {o.detail && <span class="muted small"> {o.detail}</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
