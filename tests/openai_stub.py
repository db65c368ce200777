"""A small OpenAI-compatible server that really serves one model through transformers,
the way vLLM does (`--served-model-name`, /v1/models, /v1/chat/completions with SSE).

    python tests/openai_stub.py MODEL_DIR --served-model-name NAME --port PORT
        [--api-key KEY]       every request needs `Authorization: Bearer KEY` (vllm --api-key)
        [--answer-as NAME]    chunks name this model instead (a misrouted or lying server)
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--served-model-name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--answer-as", default=None)
    a = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def send_json(self, code: int, data: dict) -> None:
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def authorised(self) -> bool:
            if a.api_key and self.headers.get("Authorization") != f"Bearer {a.api_key}":
                self.send_json(401, {"error": {"message": "invalid api key"}})
                return False
            return True

        def do_GET(self) -> None:
            if not self.authorised():
                return None
            if self.path != "/v1/models":
                return self.send_json(404, {"error": {"message": "not found"}})
            self.send_json(200, {"object": "list", "data": [
                {"id": a.served_model_name, "object": "model", "root": a.model, "owned_by": "stub"}]})

        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not self.authorised():
                return None
            if self.path != "/v1/chat/completions":
                return self.send_json(404, {"error": {"message": "not found"}})
            if req.get("model") != a.served_model_name:
                return self.send_json(404, {"error": {"message": f"model {req.get('model')} does not exist"}})
            inputs = tok.apply_chat_template(req["messages"], add_generation_prompt=True,
                                             return_tensors="pt", return_dict=True)
            streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
            kw = {"max_new_tokens": int(req.get("max_tokens") or 64), "do_sample": False,
                  "eos_token_id": eos, "pad_token_id": tok.pad_token_id, "streamer": streamer}
            out: dict = {}
            worker = threading.Thread(target=lambda: out.update(ids=model.generate(**inputs, **kw)))
            worker.start()
            base = {"id": f"chatcmpl-{time.time_ns()}", "created": int(time.time()),
                    "model": a.answer_as or a.served_model_name}
            if not req.get("stream"):
                text = "".join(streamer)
                worker.join()
                message = {"role": "assistant", "content": text}
                return self.send_json(200, {**base, "object": "chat.completion", "choices": [
                    {"index": 0, "message": message, "finish_reason": "stop"}]})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for text in streamer:
                if text:
                    chunk = {**base, "object": "chat.completion.chunk",
                             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
            worker.join()
            end = {**base, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
