// The UI's building blocks: links, buttons, dialogs, paging, tabs, notices. Native elements first
// (<dialog>, <button>, <a>) so keyboard use and screen readers work without extra code.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { navigate } from '../lib/router.ts';

export function Link(props: JSX.IntrinsicElements['a'] & { href: string }) {
  const { href, onClick, ...rest } = props;
  return (
    <a
      href={href}
      onClick={(e) => {
        if (onClick) (onClick as (e: MouseEvent) => void)(e);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      }}
      {...rest}
    />
  );
}

// ---- notices ----------------------------------------------------------------------------------

interface Toast {
  id: number;
  text: string;
  kind: 'ok' | 'error';
}
let toasts: Toast[] = [];
let nextToast = 1;
const toastListeners = new Set<(t: Toast[]) => void>();
function emit() {
  for (const l of toastListeners) l(toasts);
}

/** A short notice at the bottom of the screen, read out by screen readers. */
export function toast(text: string, kind: 'ok' | 'error' = 'ok'): void {
  const t = { id: nextToast++, text, kind };
  toasts = [...toasts, t];
  emit();
  setTimeout(() => {
    toasts = toasts.filter((x) => x.id !== t.id);
    emit();
  }, kind === 'error' ? 8000 : 3500);
}

export function Toasts() {
  const [list, setList] = useState<Toast[]>(toasts);
  useEffect(() => {
    toastListeners.add(setList);
    return () => void toastListeners.delete(setList);
  }, []);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

export function ErrorNote({ error, onRetry }: { error: Error | string | undefined; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div class="note note-error" role="alert">
      <span>{typeof error === 'string' ? error : error.message}</span>
      {onRetry && (
        <button type="button" class="btn btn-small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      <span>{label}…</span>
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/**
 * One page of an API list: the error with a retry, a spinner until the first answer, the empty
 * message, the table (dimmed while the next page loads) and the pager. Pages give the column heads,
 * the rows and the pager; everything else is the same for every list.
 */
/** A dialog form's buttons: Cancel, and the submit button (disabled while busy). */
export function FormActions(props: { onCancel: () => void; submit: ComponentChildren; busy?: boolean }) {
  return (
    <div class="actions">
      <button type="button" class="btn" onClick={props.onCancel}>
        Cancel
      </button>
      <button type="submit" class="btn btn-primary" disabled={props.busy}>
        {props.submit}
      </button>
    </div>
  );
}

export function PagedTable<T>(props: {
  list: { data?: { items: T[]; total: number }; error?: Error; loading: boolean; reload: () => void };
  caption: ComponentChildren;
  empty: ComponentChildren;
  /** Column labels; `{ num: label }` is a right-aligned numeric column. */
  columns: (string | { num: string })[];
  /** A last, unlabelled (for screen readers: "Actions") column for each row's buttons. */
  actions?: boolean;
  rows: (items: T[]) => ComponentChildren;
  pager?: (total: number) => ComponentChildren;
  /** The pager shows when there are more items than this (0: whenever there is one). */
  pagerAbove?: number;
}) {
  const { list } = props;
  return (
    <>
      <ErrorNote error={list.error} onRetry={list.reload} />
      {list.data ? (
        list.data.items.length === 0 ? (
          props.empty
        ) : (
          <div class={`table-wrap${list.loading ? ' stale' : ''}`}>
            <table class="table">
              <caption class="sr-only">{props.caption}</caption>
              <thead>
                <tr>
                  {props.columns.map((c) =>
                    typeof c === 'string' ? (
                      <th key={c} scope="col">
                        {c}
                      </th>
                    ) : (
                      <th key={c.num} scope="col" class="num">
                        {c.num}
                      </th>
                    ),
                  )}
                  {props.actions && (
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>{props.rows(list.data.items)}</tbody>
            </table>
          </div>
        )
      ) : (
        !list.error && <Spinner />
      )}
      {list.data && props.pager && list.data.total > (props.pagerAbove ?? 0) && props.pager(list.data.total)}
    </>
  );
}

// ---- copy ------------------------------------------------------------------------------------

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP deployments have no async clipboard: fall back to a selected textarea.
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  const ok = document.execCommand('copy');
  ta.remove();
  if (!ok) throw new Error('copy failed');
}

export function CopyButton({ text, label = 'Copy', what }: { text: string; label?: string; what?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="btn btn-small btn-ghost copy"
      aria-label={what ? `Copy ${what}` : label}
      title={what ? `Copy ${what}` : label}
      data-copy={text}
      onClick={async () => {
        try {
          await copyText(text);
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        } catch {
          toast('Could not copy; select the text and copy it by hand.', 'error');
        }
      }}
    >
      {done ? (
        <svg class="icon" viewBox="0 0 16 16" aria-hidden="true">
          <path d="M3 8.5l3 3 7-7" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" />
        </svg>
      ) : (
        <svg class="icon" viewBox="0 0 16 16" aria-hidden="true">
          <rect x="5.5" y="5.5" width="8" height="8" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.4" />
          <path d="M10.5 3.5v-.5a1.5 1.5 0 0 0-1.5-1.5H4A1.5 1.5 0 0 0 2.5 3v5A1.5 1.5 0 0 0 4 9.5h.5" fill="none" stroke="currentColor" stroke-width="1.4" />
        </svg>
      )}
      {done ? 'Copied' : label}
    </button>
  );
}

/** A command or secret shown in full, selectable, with a copy button. */
export function CodeLine({ text, what }: { text: string; what: string }) {
  return (
    <div class="codeline">
      <code>{text}</code>
      <CopyButton text={text} what={what} />
    </div>
  );
}

// ---- dialogs ---------------------------------------------------------------------------------

/** A modal <dialog>: focus moves in and is trapped, Escape closes, focus returns on close. */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean; dismissable?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current!;
    const before = document.activeElement as HTMLElement | null;
    if (!d.open) d.showModal();
    return () => before?.focus?.();
  }, []);
  return (
    <dialog
      ref={ref}
      class={`dialog${props.wide ? ' dialog-wide' : ''}`}
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        e.preventDefault();
        if (props.dismissable !== false) props.onClose();
      }}
    >
      <header class="dialog-head">
        <h2 id="dialog-title">{props.title}</h2>
        {props.dismissable !== false && (
          <button type="button" class="btn btn-ghost btn-icon" aria-label="Close" onClick={props.onClose}>
            ✕
          </button>
        )}
      </header>
      <div class="dialog-body">{props.children}</div>
    </dialog>
  );
}

/** Asks before a destructive action; shows the server's refusal in place. */
export function ConfirmDialog(props: { title: string; children: ComponentChildren; confirm: string; onConfirm: () => Promise<void>; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <div class="stack">
        {props.children}
        <ErrorNote error={error} />
        <div class="actions">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button
            type="button"
            class="btn btn-danger"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(undefined);
              try {
                await props.onConfirm();
                props.onClose();
              } catch (e) {
                setError((e as Error).message);
                setBusy(false);
              }
            }}
          >
            {busy ? 'Working…' : props.confirm}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

// ---- paging and tabs ------------------------------------------------------------------------

export function Pager(props: { page: number; pageSize: number; total: number; onPage: (p: number) => void; onPageSize?: (n: number) => void; label?: string }) {
  const pages = Math.max(1, Math.ceil(props.total / props.pageSize));
  const from = props.total === 0 ? 0 : (props.page - 1) * props.pageSize + 1;
  const to = Math.min(props.total, props.page * props.pageSize);
  return (
    <nav class="pager" aria-label={props.label ?? 'Pages'}>
      <span class="muted">
        {from.toLocaleString()}–{to.toLocaleString()} of {props.total.toLocaleString()}
      </span>
      {props.onPageSize && (
        <label class="inline">
          <span>Per page</span>
          <select value={String(props.pageSize)} onChange={(e) => props.onPageSize!(Number((e.target as HTMLSelectElement).value))}>
            {[...new Set([10, 15, 25, 50, 100, props.pageSize])].sort((a, b) => a - b).map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </label>
      )}
      <button type="button" class="btn btn-small" disabled={props.page <= 1} onClick={() => props.onPage(1)} aria-label="First page">
        «
      </button>
      <button type="button" class="btn btn-small" disabled={props.page <= 1} onClick={() => props.onPage(props.page - 1)} aria-label="Previous page">
        ‹ Prev
      </button>
      <span aria-current="page">
        Page {props.page.toLocaleString()} of {pages.toLocaleString()}
      </span>
      <button type="button" class="btn btn-small" disabled={props.page >= pages} onClick={() => props.onPage(props.page + 1)} aria-label="Next page">
        Next ›
      </button>
      <button type="button" class="btn btn-small" disabled={props.page >= pages} onClick={() => props.onPage(pages)} aria-label="Last page">
        »
      </button>
    </nav>
  );
}

export function Tabs({ tabs, current, label }: { tabs: { id: string; label: string; href: string }[]; current: string; label: string }) {
  return (
    <nav class="tabs" aria-label={label}>
      {tabs.map((t) => (
        <Link key={t.id} href={t.href} class={`tab${t.id === current ? ' tab-current' : ''}`} aria-current={t.id === current ? 'page' : undefined}>
          {t.label}
        </Link>
      ))}
    </nav>
  );
}

export function SearchBox({ value, onInput, label, placeholder }: { value: string; onInput: (v: string) => void; label: string; placeholder?: string }) {
  return (
    <label class="search">
      <span class="sr-only">{label}</span>
      <input type="search" value={value} placeholder={placeholder ?? label} onInput={(e) => onInput((e.target as HTMLInputElement).value)} />
    </label>
  );
}

export function Badge({ children, kind = 'plain' }: { children: ComponentChildren; kind?: 'plain' | 'ok' | 'warn' | 'info' | 'muted' }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}
