// Server-sent events read from a fetch() response body (a POST with a bearer header, which
// EventSource cannot send). Yields each event as it completes:
//   {raw, data, event, comment, at}  — raw is the event's text exactly as received (without the
//   blank line that ended it), data the joined `data:` lines (null for a comment-only block),
//   comment the text of `:` lines (": loading qwen"), at the performance.now() it arrived.

export async function* readSSE(response, { signal } = {}) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const onAbort = () => reader.cancel().catch(() => {});
  if (signal) signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      // Events end with a blank line; accept \n\n, \r\n\r\n and \r\r.
      for (;;) {
        const match = /\r\n\r\n|\n\n|\r\r/.exec(buffer);
        if (!match) break;
        const block = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        const event = parseBlock(block);
        if (event) yield event;
      }
    }
    buffer += decoder.decode();
    if (buffer.trim()) {
      const event = parseBlock(buffer);
      if (event) yield event;
    }
  } finally {
    if (signal) signal.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}

export function parseBlock(block) {
  const data = [];
  const comments = [];
  let event = null;
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (line === "") continue;
    if (line.startsWith(":")) {
      comments.push(line.slice(1).trimStart());
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") data.push(value);
    else if (name === "event") event = value;
  }
  if (!data.length && !comments.length && event === null) return null;
  return {
    raw: block,
    data: data.length ? data.join("\n") : null,
    event,
    comment: comments.length ? comments.join("\n") : null,
    at: performance.now(),
  };
}
