// socket.io 4 as most teams would run it for a chat room: every socket joins one room and each
// "msg" it emits goes to everyone else in the room. With REDIS_URL, @socket.io/redis-adapter
// spreads the room over several nodes through Redis pub/sub.
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const io = new Server({ transports: ["websocket"], perMessageDeflate: false, serveClient: false });

io.on("connection", (socket) => {
  socket.join("room");
  socket.on("msg", (data) => socket.to("room").emit("msg", data));
});

async function main() {
  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  io.listen(port);
  console.log(`socket.io listening on ${port}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
