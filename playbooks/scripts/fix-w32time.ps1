# fleet-script: fix.w32time
# fleet-version: 1
# Points W32Time at the domain hierarchy (or manual peers), makes sure it runs, resyncs.
# Running it again only resyncs a clock that is already right.
param([Parameter(Mandatory)][string]$ParamsJson)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1: without this, arrays serialize as {"value":[...],"Count":n}.
try { Remove-TypeData -TypeName System.Array } catch { $null = $_ }

function Write-Frame($doc) {
    # One frame. Non-ASCII is escaped so it survives any console code page, and < > so no value
    # can fake a frame marker (Windows PowerShell's serializer escapes them, PowerShell 7's does not).
    $json = ConvertTo-Json -InputObject $doc -Depth 6 -Compress
    $escape = [System.Text.RegularExpressions.MatchEvaluator] { param($m) '\u{0:x4}' -f [int][char]$m.Value }
    Write-Output ('<<FLEET-JSON>>' + [regex]::Replace($json, '[^\x00-\x7F]|[<>]', $escape) + '<<FLEET-END>>')
}
$p = $ParamsJson | ConvertFrom-Json

function Get-State {
    $source = (& w32tm.exe /query /source | Out-String).Trim()
    return @{ source = $source; service = "$((Get-Service -Name W32Time).Status)" }
}

$before = Get-State
if ((Get-Service -Name W32Time).StartType -eq 'Disabled') { Set-Service -Name W32Time -StartupType Automatic }
if ($before.service -ne 'Running') { Start-Service -Name W32Time }
if ($p.mode -eq 'manual') {
    & w32tm.exe /config ('/manualpeerlist:' + [string]$p.peers) /syncfromflags:manual /update | Out-Null
} else {
    & w32tm.exe /config /syncfromflags:domhier /update | Out-Null
}
Restart-Service -Name W32Time -Force
& w32tm.exe /resync /force | Out-Null
if ($LASTEXITCODE -ne 0) { throw "w32tm /resync failed with exit code $LASTEXITCODE" }
$after = Get-State
$changed = ($before.source -ne $after.source) -or ($before.service -ne $after.service)
$change = @{ target = 'W32Time'; before = $before; after = $after; changed = $changed }
Write-Frame @{ changes = @($change) }
