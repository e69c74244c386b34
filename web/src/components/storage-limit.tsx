// A project's storage limit as people think of it: unlimited, or a number of MiB, GiB or TiB.
// Used where a system admin creates a project and where one edits a project's quota; the server
// takes bytes, with -1 for unlimited.
import { useRef } from 'preact/hooks';

const UNITS = [
  { unit: 'MiB', bytes: 1024 ** 2 },
  { unit: 'GiB', bytes: 1024 ** 3 },
  { unit: 'TiB', bytes: 1024 ** 4 },
] as const;

export type LimitUnit = (typeof UNITS)[number]['unit'];

/** What the field holds: the amount stays text while it is typed. */
export interface LimitValue {
  unlimited: boolean;
  amount: string;
  unit: LimitUnit;
}

export const UNLIMITED: LimitValue = { unlimited: true, amount: '', unit: 'GiB' };

/** A limit in bytes shown in the largest unit that keeps it short ("1.5 GiB", not "1536 MiB"). */
export function limitValue(bytes: number): LimitValue {
  if (bytes < 0) return UNLIMITED;
  for (const u of [...UNITS].reverse()) {
    const v = Math.round((bytes / u.bytes) * 1000) / 1000;
    if (v >= 1 && Math.round(v * u.bytes) === bytes) return { unlimited: false, amount: String(v), unit: u.unit };
  }
  // Not a round number of MiB (set through the API): the exact value, so saving keeps it.
  return { unlimited: false, amount: String(bytes / UNITS[0].bytes), unit: 'MiB' };
}

/** Bytes (-1 for unlimited), or the reason the value cannot be saved. */
export function limitBytes(v: LimitValue): { bytes: number } | { error: string } {
  if (v.unlimited) return { bytes: -1 };
  const amount = v.amount.trim() === '' ? NaN : Number(v.amount);
  const bytes = Math.round(amount * UNITS.find((u) => u.unit === v.unit)!.bytes);
  if (!Number.isFinite(amount) || amount <= 0 || bytes < 1) return { error: 'Storage limit: enter a size greater than zero, or choose Unlimited.' };
  if (!Number.isSafeInteger(bytes)) return { error: 'Storage limit: that is more than Berth can count; choose Unlimited instead.' };
  return { bytes };
}

/**
 * Unlimited, or a size and a unit. Typing a size chooses "Limited to"; clearing it goes back to
 * unlimited, so an empty field never means a limit of nothing.
 */
export function StorageLimitField({ value, onChange, id, help }: { value: LimitValue; onChange: (v: LimitValue) => void; id: string; help?: string }) {
  const amountRef = useRef<HTMLInputElement>(null);
  return (
    <fieldset class="field" aria-describedby={help ? `${id}-help` : undefined}>
      <legend>Storage limit</legend>
      <div class="row limit-row">
        <label class="choice">
          <input type="radio" name={`${id}-mode`} checked={value.unlimited} onChange={() => onChange({ ...value, unlimited: true })} />
          <span>Unlimited</span>
        </label>
        <span class="inline">
          <label class="choice">
            <input
              type="radio"
              name={`${id}-mode`}
              checked={!value.unlimited}
              onChange={() => {
                onChange({ ...value, unlimited: false });
                amountRef.current?.focus();
              }}
            />
            <span>Limited to</span>
          </label>
          <input
            ref={amountRef}
            id={`${id}-amount`}
            name="storage_limit"
            type="number"
            inputMode="decimal"
            min="0"
            step="any"
            class="limit-amount"
            aria-label="Storage limit size"
            placeholder="e.g. 10"
            value={value.amount}
            onInput={(e) => {
              const amount = (e.target as HTMLInputElement).value;
              onChange({ ...value, amount, unlimited: amount.trim() === '' });
            }}
          />
          <select
            id={`${id}-unit`}
            name="storage_limit_unit"
            aria-label="Storage limit unit"
            value={value.unit}
            onChange={(e) => onChange({ ...value, unit: (e.target as HTMLSelectElement).value as LimitUnit })}
          >
            {UNITS.map((u) => (
              <option key={u.unit} value={u.unit}>
                {u.unit}
              </option>
            ))}
          </select>
        </span>
      </div>
      {help && (
        <small id={`${id}-help`} class="muted">
          {help}
        </small>
      )}
    </fieldset>
  );
}
