// The expiry picker shared by robot accounts and personal tokens: a few presets, a number of days,
// or never. `useExpiry` keeps the choice; `days()` is what the API takes (-1 for never).
import { useState } from 'preact/hooks';

export function useExpiry(initial: string) {
  const [expires, setExpires] = useState(initial);
  const [customDays, setCustomDays] = useState('60');
  const days = () => (expires === 'never' ? -1 : expires === 'custom' ? Number(customDays) : Number(expires));
  const field = (
    <>
      <label class="field">
        <span>Expires</span>
        <select name="expires" value={expires} onChange={(e) => setExpires((e.target as HTMLSelectElement).value)}>
          <option value="7">in 7 days</option>
          <option value="30">in 30 days</option>
          <option value="90">in 90 days</option>
          <option value="365">in a year</option>
          <option value="custom">after a number of days…</option>
          <option value="never">never</option>
        </select>
      </label>
      {expires === 'custom' && (
        <label class="field">
          <span>Days</span>
          <input type="number" name="days" min={1} value={customDays} onInput={(e) => setCustomDays((e.target as HTMLInputElement).value)} />
        </label>
      )}
    </>
  );
  return { days, field };
}
