#!/usr/bin/env bash
# Regenerates the VP8 frames Synth sends: for each size, one keyframe and one
# inter frame of a flat grey picture, encoded by libvpx through ffmpeg.
# Error-resilient mode keeps each inter frame from updating the entropy
# state, so repeating the same inter frame forever stays a valid stream.
set -euo pipefail
cd "$(dirname "$0")"
for size in 320x180 640x360 1280x720; do
	ffmpeg -v error -y -f lavfi -i "color=c=gray:s=${size}:r=30" -frames:v 2 \
		-c:v libvpx -g 1000 -auto-alt-ref 0 -lag-in-frames 0 -error-resilient 1 -b:v 500k \
		-f ivf "${size}.ivf"
done
