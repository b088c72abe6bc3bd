module imdsrender.test/gotemplate

go 1.19
