# fleet-script: fix.w32time
# fleet-version: 1
# Points W32Time at the domain hierarchy (or manual peers), makes sure it runs, resyncs.
# Running it again only resyncs a clock that is already right. Params: {"mode": "domhier"} or
# {"mode": "manual", "peers": "ntp1 ntp2,0x9"}. Reports {source, service, start_type}.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$mode = [string]$p.mode
if (-not $mode) { $mode = 'domhier' }
$peers = ([string]$p.peers).Trim()
if ($mode -ne 'domhier' -and $mode -ne 'manual') { throw "fix.w32time: mode must be domhier or manual, not '$mode'" }
if ($mode -eq 'manual' -and -not $peers) { throw 'fix.w32time: mode manual needs peers' }
# Peers travel as one argument; Windows PowerShell does not escape embedded quotes in native
# arguments, so only what host names, addresses and ",0xN" flags are made of is accepted.
if ($peers -notmatch '^[A-Za-z0-9.:,_ \[\]-]*$') { throw "fix.w32time: peers may only hold host names, addresses and ,0xN flags" }

function Invoke-W32tm {
    # w32tm's standard output as one string; its exit code is in $global:LASTEXITCODE. Standard
    # error is dropped: with $ErrorActionPreference = 'Stop', Windows PowerShell turns native
    # stderr lines (redirected, or over remoting) into terminating errors.
    param([string[]]$Arguments)
    $ErrorActionPreference = 'Continue'
    $lines = @(& w32tm.exe @Arguments 2>&1 | Where-Object {
            $_ -isnot [System.Management.Automation.ErrorRecord]
        } | ForEach-Object { [string]$_ })
    return ($lines -join "`n").Trim()
}

function Assert-W32tm([string]$What, [string]$Output) {
    if ($global:LASTEXITCODE -ne 0) { throw "w32tm $What failed (exit code $global:LASTEXITCODE): $Output" }
}

function Get-State {
    $svc = Get-Service -Name W32Time
    $source = $null
    if ($svc.Status -eq 'Running') {
        $text = Invoke-W32tm @('/query', '/source')
        if ($global:LASTEXITCODE -eq 0 -and $text) { $source = $text }
    }
    return [ordered]@{ source = $source; service = [string]$svc.Status; start_type = [string]$svc.StartType }
}

$before = Get-State
if ($before.start_type -eq 'Disabled') { Set-Service -Name W32Time -StartupType Automatic }
if ($before.service -ne 'Running') { Start-Service -Name W32Time }
if ($mode -eq 'manual') {
    $out = Invoke-W32tm @('/config', "/manualpeerlist:$peers", '/syncfromflags:manual', '/update')
}
else {
    $out = Invoke-W32tm @('/config', '/syncfromflags:domhier', '/update')
}
Assert-W32tm '/config' $out
Restart-Service -Name W32Time -Force
# /resync [/rediscover] is the documented form (w32tm /?; /force is not a w32tm option).
# Right after the restart the service may hold no time sample yet ("The computer did not resync
# because no time data was available"), so a failure is retried a few times before it counts.
for ($try = 1; $try -le 5; $try++) {
    $out = Invoke-W32tm @('/resync', '/rediscover')
    if ($global:LASTEXITCODE -eq 0) { break }
    Start-Sleep -Seconds 2
}
Assert-W32tm '/resync' $out
$after = Get-State
$changed = ($before.source -ne $after.source) -or ($before.service -ne $after.service) -or ($before.start_type -ne $after.start_type)
$change = @{ target = 'W32Time'; before = $before; after = $after; changed = $changed }
Write-Frame @{ changes = @($change) }
