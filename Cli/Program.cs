using System.CommandLine;
using Hive.Cli;

// `hive daemon` hands the whole command line to the Controller (its own flags and --help).
if (args.Length > 0 && args[0] == "daemon")
{
    return await Daemon.RunAsync(args[1..]);
}

var root = CommandTree.Build();
try
{
    return await root.Parse(args).InvokeAsync(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (CliException ex)
{
    Console.Error.WriteLine("hive: " + ex.Message);
    return ex.ExitCode;
}
