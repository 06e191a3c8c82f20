#!/usr/bin/env python3
# ADR 0036's durable floor from a headline run: python3 durable-floor.py DIR COMMIT_US
# (COMMIT_US: commitfloor --natter-rows --batch 50 per message). Prints, per repetition, the
# rate where the floor's CPU per delivery at R (linear between its ramp steps) plus a tenth
# of the commit fills one core, and Natter's CPU per delivery at its top against it.
import json,sys
# rooms: 10 deliveries per message, so a delivery carries a tenth of the commit.
D=sys.argv[1]; commit=float(sys.argv[2])/10
def steps(rep,t):
    d=json.load(open(f'{D}/{rep}-ramp-rooms-{t}.json'))
    return [(s['deliveries_per_sec'],(s['server_cpu_ns_per_delivery'] or 0)/1000,s['latency']['p99_ms']) for s in d['steps']], d['summary']['deliveries_per_sec']
for rep in ('rep1','rep2'):
    try:
        fl,ftop=steps(rep,'floor')
    except FileNotFoundError: continue
    def floor_at(r):
        pts=[(x,c) for x,c,_ in fl]
        for (x0,c0),(x1,c1) in zip(pts,pts[1:]):
            if x0<=r<=x1: return c0+(c1-c0)*(r-x0)/(x1-x0)
        return None
    # durable floor rate: highest r with (floor(r)+commit)*r <= 1e6 us per s
    r=1000.0; best=None
    while r<max(x for x,_,_ in fl):
        f=floor_at(r)
        if f is not None and (f+commit)*r/1e6<=1.0: best=r
        r+=500
    _,sio=steps(rep,'sio-peer')
    print(rep,'durable floor ~%.0fk = %.2fx sio-peer (%.1fk)'%(best/1000,best/sio,sio/1000))
    for t in ('natter','natter-sio'):
        st,top=steps(rep,t)
        # the step at the summary's rate
        x,c,p=min(st,key=lambda s:abs(s[0]-top))
        f=floor_at(x)
        print('  %s top %.1fk (%.2fx sio) cpu %.2f, durable floor at same rate %.2f -> %.2fx'%(t,top/1000,top/sio,c,f+commit,c/(f+commit)))
