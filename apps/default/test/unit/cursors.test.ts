import { encodeCursor } from "@service-chat/core";
import { describe, expect, it } from "vitest";
import { historyCursor, pageOf, readHistoryCursor, readSearchCursor, searchCursor } from "../../src/events/cursors.js";

// Page cursors of history and search: what the next page starts after, and refusals of cursors
// made for something else.

describe("history cursors", () => {
  it("carry the last seq of a page, for its room and direction only", () => {
    const c = historyCursor("room-a", true, 42);
    expect(readHistoryCursor(c, "room-a", true)).toEqual({ afterSeq: 42 });
    expect(readHistoryCursor("", "room-a", true)).toEqual({});
    for (const [room, forward] of [
      ["room-b", true],
      ["room-a", false],
    ] as const) {
      expect(() => readHistoryCursor(c, room, forward)).toThrow(
        expect.objectContaining({ code: "invalid_argument", field: "cursor" }),
      );
    }
  });

  it("refuse cursors this server did not issue", () => {
    for (const c of ["not base64 json", encodeCursor({ r: "room-a", d: "f" }), encodeCursor({ id: "x" })]) {
      expect(() => readHistoryCursor(c, "room-a", true)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    }
  });
});

describe("search cursors", () => {
  it("carry server time, seq and id of the last match", () => {
    const last = { serverTs: new Date("2026-01-02T03:04:05.678Z"), seq: 7, id: "e" };
    expect(readSearchCursor(searchCursor(last))).toEqual(last);
    expect(readSearchCursor("")).toBeUndefined();
    expect(() => readSearchCursor(historyCursor("r", true, 1))).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
  });
});

describe("pageOf", () => {
  const cursorOf = (n: number) => `after ${n}`;

  it("gives a next cursor only when a row beyond the page was read", () => {
    expect(pageOf([1, 2, 3], 2, cursorOf)).toEqual({ page: [1, 2], nextCursor: "after 2" });
    expect(pageOf([1, 2], 2, cursorOf)).toEqual({ page: [1, 2], nextCursor: "" });
    expect(pageOf([], 2, cursorOf)).toEqual({ page: [], nextCursor: "" });
  });
});
