import process from "node:process";
const a = process.cpuUsage();
let x = 0; for (let i = 0; i < 3e6; i++) x += Math.sqrt(i);
const b = process.cpuUsage(a);
console.log(b, x > 0);
const t = [];
for (let k = 0; k < 10; k++) { const c0 = process.cpuUsage(); let y = 0; for (let i = 0; i < 1e5; i++) y += Math.sqrt(i); const d = process.cpuUsage(c0); t.push(d.user + d.system); }
console.log(t);
