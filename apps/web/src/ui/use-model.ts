import { useEffect, useState } from "preact/hooks";
import type { ChatModel } from "../model.js";

/** Re-renders the component whenever the model changes. */
export function useModel(model: ChatModel): void {
  const [, setTick] = useState(0);
  useEffect(() => model.subscribe(() => setTick((t) => t + 1)), [model]);
}
