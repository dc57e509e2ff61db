# fleet-script: fix.service
# fleet-version: 1
# Starts a service (setting its start type first when asked, e.g. Disabled -> Manual).
# Idempotent: a running service with the right start type is left alone.
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
$name = [string]$p.name
# Validate everything before changing anything (this used to run after Set-Service).
if ($p.action -ne 'start') { throw "fix.service: unsupported action '$($p.action)'" }
# Exactly this service: Get-Service -Name takes wildcards.
$svc = Get-Service -Name ([Management.Automation.WildcardPattern]::Escape($name))
$before = "$($svc.Status) ($($svc.StartType))"
if ($p.start_type -and ("$($svc.StartType)" -ne [string]$p.start_type)) {
    Set-Service -Name $svc.Name -StartupType ([string]$p.start_type)
}
if ($svc.Status -ne 'Running') { Start-Service -Name $svc.Name }
$svc = Get-Service -Name $svc.Name
$after = "$($svc.Status) ($($svc.StartType))"
$change = @{ target = "service $name"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
