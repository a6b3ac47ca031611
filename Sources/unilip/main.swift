import UniLIPCore
print("unilip")
