// Opening the camera and microphone, and turning the browser's error names
// into something a county official can act on.

// 1280x720 gives the camera's simulcast three layers (1280x720, 640x360,
// 320x180); a camera that cannot do it gives its best, and fewer layers.
export const VIDEO = Object.freeze({ width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 20, max: 30 } });
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

// errorKey maps a getUserMedia DOMException to an i18n key.
export function errorKey(err) {
  switch (err && err.name) {
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'err.deviceBusy';
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'err.permission';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'err.noDevice';
    default:
      return 'err.media';
  }
}

// openMedia asks for camera and microphone. An office PC often lacks one of
// the two (no webcam on a desktop, no microphone on a conference camera), so
// when a device is missing it falls back to whichever one exists. It
// resolves to {stream} or {error: i18nKey}; it never rejects.
export async function openMedia(devices, secureContext) {
  if (!devices || !devices.getUserMedia) {
    return { error: secureContext ? 'err.unsupported' : 'err.insecure' };
  }
  try {
    return { stream: await devices.getUserMedia({ video: VIDEO, audio: AUDIO }) };
  } catch (err) {
    if (errorKey(err) !== 'err.noDevice') return { error: errorKey(err) };
  }
  for (const c of [{ audio: AUDIO }, { video: VIDEO }]) {
    try {
      return { stream: await devices.getUserMedia(c) };
    } catch {
      // try the next device
    }
  }
  return { error: 'err.noDevice' };
}
