#!/usr/bin/env python3
"""same_answers.py OLD_BIN NEW_BIN: whether two fleetmock builds answer the
same. Starts each in turn (--timing instant, --seed 11, every account limit
lifted, so the rate-limit headers do not move with the clock), sends the
same 18 requests (chat plain, n 3, a stop sequence, logprobs, a required and
an auto tool call, json_object, json_schema cut by max_tokens, reasoning on
Kimi and on GLM, a stream, completions with and without logprobs, Messages
plain and with thinking and a forced tool, Responses plain and with a tool,
embeddings) and compares status, headers (Date aside) and bodies ("created"
aside), then /metrics (the timing families and the peer hang-ups, which follow when the client closes, aside). Prints each difference
and a count; exit status 0 when nothing differs, 1 otherwise. For a change
on the request path that must not change what the server says
(docs/performance.md, issue 17). Loopback only; each server is stopped by
its PID. Standard library only.
"""
import http.client, json, os, re, subprocess, sys, tempfile, time
K="accounts/fireworks/models/kimi-k2p6"
G="accounts/fireworks/models/glm-5p1"
tool={"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"]}}}
reqs=[
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"Hi there"}],"max_tokens":30,"seed":3}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"Hi there"}],"max_tokens":30,"n":3,"seed":3}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"Hi"}],"max_tokens":40,"stop":["the"],"seed":5}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"Hi"}],"max_tokens":10,"logprobs":True,"top_logprobs":2,"seed":5}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"Weather?"}],"tools":[tool],"tool_choice":"required","seed":9}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"Weather?"}],"tools":[tool],"seed":9,"parallel_tool_calls":True}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"json"}],"response_format":{"type":"json_object"},"seed":2}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"json"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":tool["function"]["parameters"]}},"max_tokens":8,"seed":2}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"think"}],"reasoning_effort":"low","max_tokens":60,"seed":4}),
 ("/v1/chat/completions",{"model":G,"messages":[{"role":"user","content":"think"}],"reasoning_effort":"medium","seed":4,"n":2}),
 ("/v1/chat/completions",{"model":K,"messages":[{"role":"user","content":"Hi"}],"max_tokens":12,"stream":True,"seed":1}),
 ("/v1/completions",{"model":K,"prompt":"Once","max_tokens":20,"seed":8}),
 ("/v1/completions",{"model":K,"prompt":"Once","max_tokens":5,"logprobs":2,"seed":8}),
 ("/v1/messages",{"model":K,"max_tokens":40,"messages":[{"role":"user","content":"Hi"}]}),
 ("/v1/messages",{"model":K,"max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"tools":[{"name":"f","input_schema":tool["function"]["parameters"]}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"Hi"}]}),
 ("/v1/responses",{"model":K,"input":"Hello","max_output_tokens":30}),
 ("/v1/responses",{"model":K,"input":"Hello","tools":[{"type":"function","name":"f","parameters":tool["function"]["parameters"]}],"tool_choice":"required"}),
 ("/v1/embeddings",{"model":"nomic-ai/nomic-embed-text-v1.5","input":["a","b"]}),
]
def run(bin_):
    d=tempfile.mkdtemp(); pf=d+"/port"; cfg=d+"/config.json"
    open(cfg,"w").write(json.dumps({"accounts":{"limits":{k:{"start":1e9,"ceiling":1e9} for k in ["requests_per_min","prompt_tps","uncached_prompt_tps","generated_tps"]}}}))
    p=subprocess.Popen([bin_,"--timing","instant","--port","0","--port-file",pf,"--log-level","error","--seed","11","--config",cfg])
    for _ in range(100):
        if os.path.exists(pf) and open(pf).read().strip(): break
        time.sleep(0.1)
    port=int(open(pf).read().split()[0]); out=[]
    for path,b in reqs:
        c=http.client.HTTPConnection("127.0.0.1",port); c.request("POST","/inference"+path,json.dumps(b),{"Authorization":"Bearer k","Content-Type":"application/json"})
        r=c.getresponse(); body=r.read().decode()
        body=re.sub(r'"created(_at)?":\s*\d+','"created":0',body)
        hs=[(k,v) for k,v in r.getheaders() if k.lower() not in ("date",)]
        out.append((r.status,hs,body))
    c=http.client.HTTPConnection("127.0.0.1",port); c.request("GET","/metrics"); m=c.getresponse().read().decode()
    m="\n".join(l for l in m.splitlines() if "seconds" not in l and "_ms" not in l and "uptime" not in l and "hangups" not in l)
    p.terminate(); p.wait(); return out,m
a,ma=run(sys.argv[1]); b,mb=run(sys.argv[2]); bad=0
for i,(x,y) in enumerate(zip(a,b)):
    if x!=y:
        bad+=1; print("DIFF", i, reqs[i][0]); print(" A", x[0], x[2][:300]); print(" B", y[0], y[2][:300])
        if x[1]!=y[1]: print(" headers differ", set(x[1])^set(y[1]))
print("statuses", [x[0] for x in a])
print("metrics same" if ma==mb else "metrics DIFFER")
print("requests differing:", bad, "of", len(reqs))
sys.exit(1 if bad or ma!=mb else 0)
