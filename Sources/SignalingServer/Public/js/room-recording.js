// The room page's recording controls: the "Recording" badge and the record button (shown while a member
// that can record the room is present: a vcall-gateway started with --record), and the panel that lists
// and plays this room's recordings.
import { notify } from './common.js';
import { showRecordings } from './recordings.js';

const $ = (id) => document.getElementById(id);

/**
 * Installs the controls. `send(msg)` sends a signaling message. Returns the handlers room.js calls:
 * onRecordingState(msg) for `recording-state`, forget(id) when a member leaves, keepOnly(ids) on (re)joining.
 */
export function installRoomRecording({ roomId, send }) {
  const recorders = new Map(); // member id → recording (bool): members that can record the room
  const button = $('toggle-recording');
  const badge = $('recording-badge');
  const panel = $('recordings-panel');
  const opener = $('show-recordings');
  let pending = null; // the action asked for and not yet confirmed by recording-state

  function render() {
    const recording = [...recorders.values()].some(Boolean);
    badge.hidden = !recording;
    button.hidden = recorders.size === 0;
    button.setAttribute('aria-pressed', String(recording));
    button.classList.toggle('danger', recording);
    button.querySelector('.control-label').textContent = pending ? (pending === 'start' ? 'Starting…' : 'Stopping…')
      : (recording ? 'Stop recording' : 'Record');
    button.disabled = pending !== null;
  }

  button.addEventListener('click', () => {
    const [recorder] = recorders.keys();
    if (!recorder) return;
    pending = recorders.get(recorder) ? 'stop' : 'start';
    send({ type: 'recording-request', to: recorder, action: pending });
    render();
    // No answer within 10 s: the gateway did not act (say it has no recording folder).
    const asked = pending;
    setTimeout(() => {
      if (pending !== asked) return;
      pending = null;
      render();
      notify('The recorder did not respond. Try again, or check the gateway.', 'error');
    }, 10000);
  });

  async function refresh() {
    window.vcallRecordings = await showRecordings($('recording-list'), $('recording-player'), { room: roomId });
  }
  opener.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    opener.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) refresh();
    else $('recording-player').pause();
  });
  $('close-recordings').addEventListener('click', () => opener.click());

  function onRecordingState(msg) {
    if (!msg.from || typeof msg.recording !== 'boolean') return;
    const was = [...recorders.values()].some(Boolean);
    recorders.set(msg.from, msg.recording);
    pending = null;
    const now = [...recorders.values()].some(Boolean);
    if (now !== was) notify(now ? 'This call is being recorded.' : 'Recording stopped.', 'info', 4000);
    render();
    if (!panel.hidden) refresh();
  }

  function forget(id) {
    if (recorders.delete(id)) render();
  }

  function keepOnly(ids) {
    for (const id of [...recorders.keys()]) if (!ids.has(id)) recorders.delete(id);
    render();
  }

  render();
  return { onRecordingState, forget, keepOnly };
}
