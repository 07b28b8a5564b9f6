/**
 * The dashboard's stylesheet, inlined in the page (one request, no build step). Mobile
 * first: one column, tables scroll sideways inside their card rather than the whole page.
 */
export const DASHBOARD_CSS = `
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#24292f;color:#fff;padding:14px 16px}
header h1{margin:0;font-size:19px;font-weight:600}
header .sub{color:#c9d1d9;font-size:13px;margin-top:2px;word-break:break-all}
main{max-width:1040px;margin:0 auto;padding:12px}
.summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:4px 0 14px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:18px;font-weight:600;margin-top:2px}
.tile .note{font-size:12px;color:var(--muted)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:0 0 14px}
section>h2{font-size:16px;margin:0 0 10px}
h3{font-size:15px;margin:14px 0 6px}
h3 .badge{vertical-align:1px}
.device{border-top:1px solid var(--line);padding-top:8px;margin-top:8px}
.device:first-of-type{border-top:0;margin-top:0;padding-top:0}
.device h4{margin:0 0 4px;font-size:14px}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;white-space:nowrap}
tr.latest td{background:#f0f7ff}
tr.sub td{border-bottom:1px dashed var(--line);font-size:13px;color:var(--muted);padding-left:22px}
tr.sub.failed td{color:var(--bad)}
.badge{display:inline-block;font-size:12px;line-height:18px;padding:0 7px;border-radius:9px;background:#eaeef2;color:var(--fg);white-space:nowrap}
.badge.ok{background:#dafbe1;color:var(--ok)}.badge.warn{background:#fff8c5;color:var(--warn)}.badge.bad{background:#ffebe9;color:var(--bad)}
.badge.info{background:#ddf4ff;color:var(--accent)}
.muted{color:var(--muted)}
.error{color:var(--bad);word-break:break-word}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eff2f5;padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
.nowrap{white-space:nowrap}
.device h4 .badge{margin-left:2px}
.device>p.error{margin:0 0 6px;font-size:13px}
ul.problems{margin:6px 0 0;padding-left:18px;font-size:14px}
ul.problems li{margin:2px 0}
form{display:inline}
button{font:inherit;font-size:14px;padding:6px 14px;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer}
.chart{width:100%;max-width:640px;height:auto;display:block;margin:0 auto}
.legend{font-size:13px;color:var(--muted);margin:4px 0 0}
.key{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 4px -1px 10px}
.key.bytes{background:#54aeff}.key.secs{background:#bc4c00}.key.failed{background:#cf222e}.key.partial{background:#d4a72c}
footer{color:var(--muted);font-size:12px;text-align:center;padding:4px 0 20px}
@media (max-width:600px){main{padding:8px}section{padding:10px}th,td{padding:4px 6px}.hide-sm{display:none}}
`;
