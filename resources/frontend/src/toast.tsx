// Short notices in a polite live region, so that screen readers announce them.
import { createContext, useCallback, useContext, useState } from "react";
import type { ReactNode } from "react";

const ToastContext = createContext<(message: string) => void>(() => undefined);

export function ToastProvider({ children }: { children: ReactNode }) {
  const [messages, setMessages] = useState<{ id: number; text: string }[]>([]);
  const show = useCallback((text: string) => {
    const id = Date.now() + Math.random();
    setMessages((m) => [...m, { id, text }]);
    setTimeout(() => setMessages((m) => m.filter((x) => x.id !== id)), 4000);
  }, []);
  return (
    <ToastContext.Provider value={show}>
      {children}
      <div className="pq-toasts" role="status" aria-live="polite">
        {messages.map((m) => (
          <p key={m.id} className="pq-toast">
            {m.text}
          </p>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

/** Shows a notice. */
export const useToast = () => useContext(ToastContext);
