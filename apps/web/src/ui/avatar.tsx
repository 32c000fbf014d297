/** A round badge with the first letter of a name, in a colour of its own. */
export function Avatar({ name, size = "md" }: { name: string; size?: "sm" | "md" }) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  const initial = [...name.trim()][0]?.toUpperCase() ?? "?";
  return (
    <span class={`avatar avatar-${size}`} style={{ "--hue": hash % 360 }} aria-hidden="true">
      {initial}
    </span>
  );
}
