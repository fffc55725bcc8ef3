using System.Net;
using Hive.Controller.Api;
using Hive.Controller.Api.Access;
using Hive.Controller.Hosting;
using Hive.Controller.Images;
using Hive.Controller.Sandboxes;
using Hive.Controller.Sandboxes.Sbxd;
using Hive.Controller.Sandboxes.Store;

var (options, errors, help) = ControllerConfiguration.Load(args, Environment.GetEnvironmentVariables(), AppContext.BaseDirectory);
if (help)
{
    Console.Out.WriteLine(ControllerConfiguration.Usage);
    return 0;
}

if (options is null)
{
    foreach (var error in errors)
    {
        Console.Error.WriteLine("hive-controller: " + error);
    }

    Console.Error.WriteLine("Run 'hive-controller --help' for the options.");
    return 2;
}

Directory.CreateDirectory(options.DataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
Directory.CreateDirectory(options.SandboxesDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "HH:mm:ss ";
});
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
builder.Logging.AddFilter("Yarp", LogLevel.Warning); // a line per forwarded request otherwise; failures are in the audit record
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.Limits.MaxRequestBodySize = 1024 * 1024; // JSON bodies; file uploads lift it per request
    kestrel.Listen(IPAddress.Parse(options.EffectiveHost), options.Port);
});

builder.Services.AddSingleton(options);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<HostFacts>();
builder.Services.AddSingleton(sp => new SandboxStore(options.DatabasePath, sp.GetRequiredService<TimeProvider>()));
builder.Services.AddSingleton<ImageCatalog>();
builder.Services.AddSingleton<SbxdLauncher>();
builder.Services.AddSingleton<SbxdClients>();
builder.Services.AddSingleton<SandboxManager>();
builder.Services.AddSingleton<Hive.Controller.Events.ControllerSpools>();
builder.Services.AddSingleton<Hive.Controller.Events.EventFeeds>();
builder.Services.AddSingleton<Hive.Controller.Mcp.AgentHttp>();
builder.Services.AddSingleton<Hive.Controller.Ingress.SandboxProxy>();
builder.Services.AddHttpForwarder(); // YARP's IHttpForwarder: ingress and MCP
builder.Services.AddSingleton<Hive.Controller.Analytics.AnalyticsStore>(sp => new(options.DatabasePath));
builder.Services.AddHostedService<Hive.Controller.Analytics.AnalyticsSampler>();
builder.Services.AddHostedService<Hive.Controller.Events.EventRetention>();
builder.Services.AddHostedService<SandboxSupervisor>();
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
builder.Services.AddApiAccess(options);

var app = builder.Build();
app.UseJsonErrors();
app.UseJsonStatusPages();
app.UseApiAccess(options); // every endpoint below needs the key unless it says AllowAnonymous()
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });

// Seed 003: the only anonymous endpoints are /healthz and the dashboard's static shell (GET
// /dashboard, which authenticates client-side through API calls). The dashboard is not built
// yet; when it is, map its static files here with .AllowAnonymous() — nothing else may be.
app.MapGet("/healthz", () => Results.Text("ok")).AllowAnonymous();
app.MapSandboxEndpoints();
app.MapSecretEndpoints();
app.MapExecEndpoints();
app.MapExecStreamEndpoints();
app.MapFileEndpoints();
Hive.Controller.Events.EventsEndpoints.MapEventsEndpoints(app);
Hive.Controller.Events.BudgetEndpoints.MapBudgetEndpoints(app);
Hive.Controller.Analytics.AnalyticsEndpoints.MapAnalyticsEndpoints(app);
Hive.Controller.Mcp.McpEndpoints.MapMcpEndpoints(app);
Hive.Controller.Ingress.ProxyEndpoints.MapProxyEndpoints(app);

var startup = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Hive.Controller");
try
{
    await app.StartAsync();
}
catch (IOException ex)
{
    Console.Error.WriteLine($"hive-controller: cannot listen on {options.EffectiveHost}:{options.Port}: {ex.Message}");
    return 1;
}

var port = new Uri(app.Urls.First()).Port;
Startup.LogListening(startup, options.EffectiveHost, port, options.DataDir);
if (options.ApiKey is null)
{
    Startup.LogNoApiKey(startup);
}

if (!options.UserNamespaces)
{
    Startup.LogNoUserNamespaces(startup);
}

// Sandboxes made before user namespaces (or under --userns off) keep their host ids until made again: say which.
foreach (var legacy in app.Services.GetRequiredService<SandboxStore>().List().Where(r => r.IdBase is null))
{
    Startup.LogSandboxWithoutUserNamespace(startup, legacy.Name);
}

await app.WaitForShutdownAsync();
return 0;
