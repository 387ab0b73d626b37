// Message content as a person wants to read it: JSON and XML indented, binary as a download
// and a short hex preview. The raw text is always kept alongside: it is what was sent, byte
// for byte, and what Copy and Download give you.

/** Above this size the pretty view is skipped: indenting megabytes freezes the tab for little gain. */
const PRETTY_LIMIT_CHARS = 2_000_000;

export function contentKind(contentType, text) {
  const type = (contentType || "").split(";")[0].trim().toLowerCase();
  if (type.endsWith("json") || type.endsWith("+json")) return "json";
  if (type.endsWith("xml") || type.endsWith("+xml")) return "xml";
  const start = (text || "").trimStart()[0];
  if (start === "{" || start === "[") return "json";
  if (start === "<") return "xml";
  return "text";
}

/** Indented JSON or XML, or null when the text is not that (or too big): show it raw then. */
export function prettyText(kind, text) {
  if (!text || text.length > PRETTY_LIMIT_CHARS) return null;
  if (kind === "json") {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return null;
    }
  }
  if (kind === "xml") return prettyXml(text);
  return null;
}

export function prettyXml(text) {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  if (doc.getElementsByTagName("parsererror").length > 0) return null;
  const lines = [];
  const declaration = text.match(/^\s*<\?xml[^>]*\?>/);
  if (declaration) lines.push(declaration[0].trim());
  for (const node of doc.childNodes) writeXmlNode(node, 0, lines);
  return lines.join("\n");
}

function writeXmlNode(node, depth, lines) {
  const pad = "  ".repeat(depth);
  switch (node.nodeType) {
    case Node.ELEMENT_NODE: {
      const attributes = [...node.attributes].map((a) => ` ${a.name}="${escapeXml(a.value, true)}"`).join("");
      const children = [...node.childNodes].filter((c) => !(c.nodeType === Node.TEXT_NODE && !c.nodeValue.trim()));
      if (children.length === 0) {
        lines.push(`${pad}<${node.tagName}${attributes}/>`);
      } else if (children.length === 1 && children[0].nodeType === Node.TEXT_NODE) {
        lines.push(`${pad}<${node.tagName}${attributes}>${escapeXml(children[0].nodeValue.trim())}</${node.tagName}>`);
      } else {
        lines.push(`${pad}<${node.tagName}${attributes}>`);
        for (const child of children) writeXmlNode(child, depth + 1, lines);
        lines.push(`${pad}</${node.tagName}>`);
      }
      break;
    }
    case Node.TEXT_NODE:
      if (node.nodeValue.trim()) lines.push(pad + escapeXml(node.nodeValue.trim()));
      break;
    case Node.CDATA_SECTION_NODE:
      lines.push(`${pad}<![CDATA[${node.nodeValue}]]>`);
      break;
    case Node.COMMENT_NODE:
      lines.push(`${pad}<!--${node.nodeValue}-->`);
      break;
    case Node.PROCESSING_INSTRUCTION_NODE:
      lines.push(`${pad}<?${node.target} ${node.data}?>`);
      break;
    case Node.DOCUMENT_TYPE_NODE:
      lines.push(`<!DOCTYPE ${node.name}>`);
      break;
    default:
      break;
  }
}

function escapeXml(text, attribute = false) {
  const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return attribute ? escaped.replace(/"/g, "&quot;") : escaped;
}

/** The API's content as bytes: base64 decoded, or the text encoded as UTF-8 (how it arrived). */
export function contentBytes(content) {
  if (content.encoding === "base64") {
    const binary = atob(content.data);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }
  return new TextEncoder().encode(content.data);
}

/** "00000000  89 50 4e 47 ...  .PNG...." for the first bytes. */
export function hexPreview(bytes, limit = 256) {
  const lines = [];
  for (let offset = 0; offset < Math.min(bytes.length, limit); offset += 16) {
    const row = bytes.slice(offset, Math.min(offset + 16, bytes.length));
    const hex = [...row].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > limit) lines.push(`… ${bytes.length - limit} more bytes`);
  return lines.join("\n");
}

const EXTENSIONS = { json: "json", xml: "xml", text: "txt" };

export function downloadName(failure, content) {
  const base = (failure.message_id || failure.id).replace(/[^A-Za-z0-9._-]/g, "_");
  if (content.encoding === "base64") return `${base}.bin`;
  return `${base}.${EXTENSIONS[contentKind(content.content_type, content.data)]}`;
}

/** Save bytes as a file through an object URL (works offline, no server round trip). */
export function downloadBytes(bytes, fileName, contentType) {
  const blob = new Blob([bytes], { type: contentType || "application/octet-stream" });
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later: revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/** Copy text; falls back to a hidden textarea where the async clipboard is refused. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    // Inside an open modal: everything outside it is inert and cannot be selected.
    (document.querySelector("dialog[open]") ?? document.body).append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    area.remove();
    return copied;
  }
}
