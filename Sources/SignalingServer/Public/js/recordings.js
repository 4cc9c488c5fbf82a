// The recordings list (GET /api/recordings) and its player: used by /recordings and by the room page.
import { api, el, errorMessage } from './common.js';

function formatDuration(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

function formatBytes(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

/** `/recordings/FILE`: where a recording plays and downloads. */
export function recordingURL(entry) {
  return `/recordings/${encodeURIComponent(entry.file)}`;
}

/**
 * Fetches the recordings the signed-in account may see (of one room when `room` is given) and renders
 * them into `list`, newest first; a click on one plays it in `player` (a <video>). Resolves to
 * {ok, status, entries, message}.
 */
export async function showRecordings(list, player, { room } = {}) {
  const r = await api('GET', room ? `/api/recordings?room=${encodeURIComponent(room)}` : '/api/recordings');
  list.replaceChildren();
  if (!r.ok) {
    const message = r.status === 401 ? 'Log in to see recordings: each account sees the recordings of the rooms it was in.'
      : errorMessage(r, 'The recordings cannot be listed right now.');
    list.append(el('li', { className: 'muted' }, message));
    return { ok: false, status: r.status, entries: [], message };
  }
  const entries = r.data.recordings || [];
  if (!r.data.enabled) {
    list.append(el('li', { className: 'muted' }, 'This server keeps no recordings (start it with --recordings DIR).'));
  } else if (entries.length === 0) {
    list.append(el('li', { className: 'muted' }, room ? 'No recordings of this room that you can see yet.' : 'No recordings that you can see yet.'));
  }
  for (const entry of entries) {
    const who = entry.composite ? 'Whole meeting' : entry.participant;
    const when = new Date(entry.start).toLocaleString();
    const state = !entry.finalized ? (entry.duration > 0 ? 'not finalized' : 'recording…') : (entry.repaired ? 'repaired' : '');
    const play = el('button', {
      type: 'button', className: 'link recording-play', dataset: { file: entry.file },
      onclick: () => {
        player.hidden = false;
        player.src = recordingURL(entry);
        player.dataset.file = entry.file;
        player.play().catch(() => { /* autoplay refused: the controls are there */ });
      },
    }, who);
    list.append(el('li', { className: 'recording', dataset: { file: entry.file } },
      play,
      el('span', { className: 'muted small' },
        `${room ? '' : `room ${entry.room} · `}${when} · ${entry.duration > 0 ? formatDuration(entry.duration) : '–'} · ${formatBytes(entry.bytes)}${state ? ` · ${state}` : ''}`),
      el('a', { href: recordingURL(entry), download: entry.file, className: 'small' }, 'Download')));
  }
  return { ok: true, status: r.status, entries, message: '' };
}
