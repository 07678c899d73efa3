// Which activation payload belongs to the selection model's current state.

/**
 * Payload to paint for the grid model's selection: the live payload when it matches,
 * else a precomputed frame (kernel-less pages), else null (the kernel is still computing).
 * @param {any} grid the ActivationGrid model
 */
export function currentPayload(grid) {
  const layer = grid.get("layer");
  const image = grid.get("image_index");
  const page = grid.get("page") ?? 0;
  const live = grid.get("payload");
  const matches = live && live.layer === layer && (live.image_index ?? 0) === image;
  const frame = (grid.get("frames") || {})[`${layer}|${image}`];
  if (matches && (!frame || (live.page ?? 0) === page || page !== 0)) return live;
  if (frame && page === 0) return frame;
  return matches ? live : null;
}

/**
 * One channel of a decoded maps payload as a single-tile decoded object, or null if the
 * channel is not on that page.
 */
export function channelOf(dec, channel) {
  if (!dec) return null;
  const i = dec.channels.indexOf(channel);
  if (i < 0) return null;
  const px = dec.h * dec.w;
  return {
    ...dec, n: 1, data: dec.data.subarray(i * px, (i + 1) * px),
    offset: dec.offset.subarray(i, i + 1), scale: dec.scale.subarray(i, i + 1),
    channels: Int32Array.of(channel), total: 1, pages: 1, page: 0,
  };
}
