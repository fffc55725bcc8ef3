using System.CommandLine;
using Hive.Cli;

// `hive daemon` hands the whole command line to the Controller (its own flags and --help).
if (args.Length > 0 && args[0] == "daemon")
{
    return await Daemon.RunAsync(args[1..]);
}

var root = CommandTree.Build();
var parse = root.Parse(args);
try
{
    var exitCode = await parse.InvokeAsync(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
    return parse.Errors.Count > 0 ? 2 : exitCode; // usage errors are 2, like every other failure to understand the command line
}
catch (CliException ex)
{
    Console.Error.WriteLine("hive: " + ex.Message);
    return ex.ExitCode;
}
catch (Hive.Client.HiveApiException ex)
{
    Console.Error.WriteLine("hive: " + Api.Describe(ex, CommandTree.ApiUrlOf(parse)));
    return 1;
}
