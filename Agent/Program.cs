using System.Diagnostics;
using Hive.Agent;
using Hive.Agent.Exec;
using Hive.Agent.Files;
using Hive.Agent.Init;
using Hive.Agent.Processes;
using Hive.Protos.V1;
using Hive.Wire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// hive-agent: PID 1 of every sandbox container. Serves hive.v1.Agent to Sbxd, and the sandbox's
// MCP server (Streamable HTTP at /mcp) on the same socket for the Controller.
//   --listen-fd N      an inherited, already listening AF_UNIX socket (how Sbxd starts it)
//   --listen-unix P    bind P itself (tests, running outside a container)
//   --mcp-port N       also serve /mcp on TCP port N of the sandbox's loopback (the default image: 8080)
// First of all: out of reach of the sandbox's ptrace, /proc/1/* and signals (see Init/).
Inspection.Deny();
using var stopSignals = StopSignals.Ignore();

GrpcListen? listen = null;
int? mcpPort = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--listen-fd" when i + 1 < args.Length && int.TryParse(args[i + 1], out var fd) && fd >= 3:
            // Commands must never inherit the agent's socket: they could accept Sbxd's connections.
            Hive.Interop.Libc.SetCloseOnExec(fd, true);
            listen = GrpcListen.Handle((ulong)fd);
            i++;
            break;
        case "--listen-unix" when i + 1 < args.Length:
            listen = GrpcListen.UnixSocket(args[++i]);
            break;
        case "--mcp-port" when i + 1 < args.Length && int.TryParse(args[i + 1], out var port) && port is > 0 and < 65536:
            mcpPort = port;
            i++;
            break;
        case "--version":
            Console.WriteLine(AgentInfo.Version);
            return 0;
        default:
            Console.Error.WriteLine($"hive-agent: unexpected argument '{args[i]}'\nusage: hive-agent --listen-fd N | --listen-unix PATH");
            return 2;
    }
}

if (listen is null)
{
    Console.Error.WriteLine("usage: hive-agent --listen-fd N | --listen-unix PATH");
    return 2;
}

var started = Stopwatch.StartNew();
var reaper = new ChildReaper();
var environment = new AgentEnvironment();
var exec = new ExecService(reaper, new PipePump(), environment);
var files = new FileService();

var app = GrpcServer.Create(listen, builder =>
{
    InitHost.Configure(builder);
    Hive.Agent.Mcp.McpHost.Configure(builder, exec, mcpPort);
});
stopSignals.Logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Hive.Agent.Init");
app.MapUnary<ExecRequest, ExecResponse>("/hive.v1.Agent/Exec", exec.ExecAsync);
app.MapServerStreaming<ReadFileRequest, FileChunk>("/hive.v1.Agent/ReadFile", files.ReadAsync);
app.MapClientStreaming<WriteFileRequest, WriteFileResponse>("/hive.v1.Agent/WriteFile", files.WriteAsync);
app.MapUnary<ListFilesRequest, ListFilesResponse>("/hive.v1.Agent/ListFiles", files.ListAsync);
var streams = new ExecStreamService(reaper, environment);
app.MapServerStreaming<ExecRequest, ExecStreamEvent>("/hive.v1.Agent/ExecStream", streams.RunAsync);
app.MapUnary<ExecInputRequest, ExecInputResponse>("/hive.v1.Agent/ExecInput", streams.InputAsync);
app.MapUnary<PingRequest, PingResponse>("/hive.v1.Agent/Ping", (_, _) => Task.FromResult(new PingResponse
{
    Pid = Environment.ProcessId,
    Version = AgentInfo.Version,
    UptimeMs = (ulong)started.ElapsedMilliseconds,
}));

Hive.Agent.Mcp.McpHost.Map(app, mcpPort);
await app.RunAsync();
return 0;
